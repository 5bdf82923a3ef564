import Foundation
@testable import Journal
import PasserelleCore
import Testing

/// The journal's SQL is written once (``JournalStatement``, the filter query, the usage
/// aggregates) and rendered per dialect: each rendering must be one its real database accepts,
/// so a dialect typo fails here rather than on the first node that runs that statement.
@Suite("journal: one statement table, two dialects")
struct StatementTableTests {
    /// Every statement the shared operations send, as `dialect` receives it.
    static func statements(_ dialect: SQLDialect) -> [(name: String, sql: String)] {
        var all = JournalStatement.all.map { ("\($0)", dialect.render($0.sql(dialect))) }
        var filter = TransmissionFilter()
        filter.transmissionIDs = [1, 2]
        filter.documentID = "d"
        filter.patientKey = "pk"
        filter.target = .dmp
        filter.states = [.failed, .sent]
        filter.from = JournalFixture.t0
        filter.until = JournalFixture.t0.plus(3600)
        filter.limit = 10
        for lock in [false, true] {
            all.append(("transmissions(matching:lock: \(lock))", JournalStatement.transmissions(matching: filter, lock: lock, dialect).sql))
        }
        let usage = UsageQuery(boundaries: [JournalFixture.t0, JournalFixture.t0.plus(86400), JournalFixture.t0.plus(2 * 86400)],
                               finess: [JournalFixture.finess])
        all.append(("usage sets", UsageSQL.sets(usage, dialect).sql))
        all.append(("usage stays", UsageSQL.stays(usage, dialect).sql))
        let audit = OperatorActionQuery(from: JournalFixture.t0, until: JournalFixture.t0.plus(60), actions: [.flush, .discard], limit: 5)
        all.append(("operatorActions", JournalStatement.operatorActions(audit, dialect).sql))
        return all
    }

    @Test("parameter marks: ?N for SQLite, $N for PostgreSQL")
    func rendering() {
        let text = "a = ?1 AND b IN (?2, ?12) AND c = '?'"
        #expect(SQLDialect.sqlite.render(text) == text)
        #expect(SQLDialect.postgresql.render(text) == "a = $1 AND b IN ($2, $12) AND c = '?'")
    }

    @Test("every statement is prepared by the real database of its dialect", arguments: JournalBackend.allCases)
    func everyStatementPrepares(_ backend: JournalBackend) throws {
        let fixture = try JournalFixture(backend)
        let raw = try fixture.raw()
        switch backend {
        case .sqlite:
            let db = try #require(raw.sqlite)
            for (name, sql) in Self.statements(.sqlite) {
                // SQLite would read `$1` as a named parameter, numbered by order of appearance.
                #expect(!sql.contains("$"), "\(name): a PostgreSQL mark in SQLite text")
                do { _ = try db.prepare(sql) } catch { Issue.record("\(name): \(error)\n\(sql)") }
            }
            db.close()
        case .postgresql:
            let db = try #require(raw.postgres)
            for (i, (name, sql)) in Self.statements(.postgresql).enumerated() {
                #expect(sql.range(of: #"\?[0-9]"#, options: .regularExpression) == nil, "\(name): an SQLite mark in PostgreSQL text")
                // PREPARE infers every parameter's type as the server does for the store's queries.
                do {
                    try db.execute("PREPARE statement\(i) AS \(sql)")
                    try db.execute("DEALLOCATE statement\(i)")
                } catch { Issue.record("\(name): \(error)\n\(sql)") }
            }
            db.close()
        }
    }
}
