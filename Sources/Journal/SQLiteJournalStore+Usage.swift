import Foundation
import PasserelleCore
import SQLiteKit

extension SQLiteJournalStore {
    public func usageCounts(_ query: UsageQuery) async throws(JournalError) -> [UsageCounts] {
        try UsageSQL.validate(query)
        return try await onThread { db in
            // One read transaction: both aggregates see the same journal.
            try db.transaction(.deferred) {
                func rows(_ statement: UsageSQL.Statement) throws -> [SQLiteColumns] {
                    try db.query(statement.sql, statement.values.map { value -> any SQLiteBindable in
                        switch value {
                        case .integer(let v): v
                        case .text(let v): v
                        }
                    }).map(SQLiteColumns.init)
                }
                return UsageSQL.counts(sets: try rows(UsageSQL.sets(query, .sqlite)), stays: try rows(UsageSQL.stays(query, .sqlite)))
            }
        }
    }
}
