import Foundation
import PasserelleCore

/// The `Retry-After` header of a busy DMP (RFC 9110 §10.2.3): delay-seconds or an HTTP-date.
public enum RetryAfter {
    /// The longest wait taken from a server: a wrong header (a date years ahead) must not park
    /// a document for long; the retry policy's own backoff and deadline still apply.
    public static let maximum: Duration = .seconds(3600)

    /// The wait the header asks for, capped at ``maximum``; nil when absent, unreadable or
    /// already past (nothing to honour: the backoff alone decides).
    public static func parse(_ header: String?, now: Date = Date()) -> Duration? {
        guard let text = header?.trimmingWhitespace(), !text.isEmpty else { return nil }
        let cap = Int(maximum.components.seconds)
        let seconds: Int
        if text.unicodeScalars.allSatisfy({ ("0"..."9").contains($0) }) {
            // Too many digits for an Int is still a (very long) delay: the cap.
            seconds = Int(text).map { min($0, cap) } ?? cap
        } else if let date = httpDate(text) {
            let wait = date.timeIntervalSince(now)
            guard wait.isFinite else { return nil }
            seconds = wait >= Double(cap) ? cap : Int(wait.rounded(.up))
        } else {
            return nil
        }
        return seconds > 0 ? .seconds(seconds) : nil
    }

    /// IMF-fixdate, and the obsolete RFC 850 and asctime forms a recipient must still accept.
    static func httpDate(_ text: String) -> Date? {
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"] {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = format
            if let date = formatter.date(from: text.replacingOccurrences(of: "  ", with: " ")) { return date }
        }
        return nil
    }
}
