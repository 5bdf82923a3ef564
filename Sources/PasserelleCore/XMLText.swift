/// Escaping of text and attribute values written into XML by hand (ebRIM metadata, the
/// report's XHTML): the five predefined characters become entities, nothing else changes.
/// (The CDA template renderer has its own, stricter escaping: it also refuses control
/// characters and keeps tabs and line ends in attributes.)
public enum XMLText {
    /// `apostrophe`: `&apos;` (XML) or `&#39;` (also understood by HTML parsers that predate XHTML).
    public static func escape(_ text: String, apostrophe: String = "&apos;") -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += apostrophe
            default: out.append(c)
            }
        }
        return out
    }
}
