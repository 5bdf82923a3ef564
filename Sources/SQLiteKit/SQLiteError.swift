import CSQLite
import Foundation

/// A failure reported by SQLite, with its own message and extended result code.
public struct SQLiteError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The extended result code (`SQLITE_CONSTRAINT_UNIQUE`, `SQLITE_BUSY_SNAPSHOT`, …).
    public let extendedCode: Int32
    /// `sqlite3_errmsg` at the time of the failure.
    public let message: String
    /// What Passerelle was doing (`open /var/lib/passerelle/journal.db`, `prepare`, `step`, …).
    public let context: String
    /// The errno of the system call that failed (`sqlite3_system_errno`), 0 when none: tells a
    /// full disk from a read-only file system, a permission or a missing folder, which SQLite's
    /// own codes (CANTOPEN, IOERR, READONLY) mix up.
    public let systemErrno: Int32

    public init(extendedCode: Int32, message: String, context: String, systemErrno: Int32 = 0) {
        self.extendedCode = extendedCode
        self.message = message
        self.context = context
        self.systemErrno = systemErrno
    }

    /// The codes that come from a failed system call (then ``systemErrno`` says which).
    var isSystemFailure: Bool {
        [SQLITE_CANTOPEN, SQLITE_IOERR, SQLITE_FULL, SQLITE_READONLY, SQLITE_PERM].contains(primaryCode)
    }

    /// The primary result code (the low byte of the extended one).
    public var primaryCode: Int32 { extendedCode & 0xFF }

    /// A UNIQUE, PRIMARY KEY, CHECK, NOT NULL or FOREIGN KEY constraint refused the write.
    public var isConstraintViolation: Bool { primaryCode == SQLITE_CONSTRAINT }
    /// Specifically a UNIQUE or PRIMARY KEY constraint.
    public var isUniqueViolation: Bool {
        extendedCode == SQLiteError.constraintUnique || extendedCode == SQLiteError.constraintPrimaryKey
    }

    // Extended codes are composite macros Swift cannot import: (SQLITE_CONSTRAINT | n << 8).
    static let constraintUnique: Int32 = SQLITE_CONSTRAINT | (8 << 8)
    static let constraintPrimaryKey: Int32 = SQLITE_CONSTRAINT | (6 << 8)
    /// Another connection held the lock longer than the busy timeout.
    public var isBusy: Bool { primaryCode == SQLITE_BUSY || primaryCode == SQLITE_LOCKED }

    public var description: String {
        var text = "SQLite error during \(context): \(message) (code \(extendedCode))"
        if isSystemFailure && systemErrno != 0 {
            text += " [\(String(cString: strerror(systemErrno)))]"
            switch systemErrno {
            case ENOSPC, EDQUOT: text += "; the disk holding the journal is full: free space there"
            case EROFS: text += "; the journal's file system is mounted read-only: check the disk, remount it read-write"
            case EACCES, EPERM: text += "; the passerelle user may not write the journal's folder: fix its owner and permissions"
            case ENOENT, ENOTDIR: text += "; the journal's folder does not exist: mount its volume or create it, writable by the passerelle user"
            default: text += "; check the disk holding the journal and the system log"
            }
            return text
        }
        if isBusy {
            text += "; another process holds the journal lock: check that no other passerelle uses this SQLite file, or use the PostgreSQL backend for several nodes"
        } else if primaryCode == SQLITE_CANTOPEN || primaryCode == SQLITE_PERM || primaryCode == SQLITE_READONLY {
            text += "; check that the folder exists and is writable by the passerelle user"
        } else if primaryCode == SQLITE_FULL || primaryCode == SQLITE_IOERR {
            text += "; check free disk space and the health of the disk holding the journal"
        } else if primaryCode == SQLITE_CORRUPT || primaryCode == SQLITE_NOTADB {
            text += "; the file is not a usable SQLite database: restore it from a backup"
        }
        return text
    }
}
