import Foundation
import PostgresKit
import SQLiteKit
import TestSupport

/// SQL straight to the journal's database, bypassing the store, on either backend. Statements
/// use `?` placeholders (numbered `$n` for PostgreSQL); values come back as text.
struct RawDatabase {
    var sqlite: SQLiteConnection?
    var postgres: PostgresConnection?

    struct Value: Equatable {
        var string: String?
        var int: Int? { string.flatMap { Int($0) } }
        var int64: Int64? { string.flatMap { Int64($0) } }
        var isNull: Bool { string == nil }
    }

    struct Row {
        var values: [String: Value]
        subscript(_ name: String) -> Value { values[name] ?? Value(string: nil) }
    }

    /// A failure from either backend, with what the tests look at.
    struct Failure: Error, CustomStringConvertible {
        var isUniqueViolation: Bool
        var message: String
        var description: String { message }
    }

    init(sqlite: SQLiteConnection) { self.sqlite = sqlite }
    init(postgres: PostgresConnection) { self.postgres = postgres }

    func query(_ sql: String, _ parameters: [Any] = []) throws -> [Row] {
        do {
            if let sqlite {
                let bindings: [any SQLiteBindable] = parameters.map { ($0 as? any SQLiteBindable) ?? String(describing: $0) }
                return try sqlite.query(sql, bindings).map { row in
                    Row(values: Dictionary(uniqueKeysWithValues: zip(row.columns, row.values.map { value in
                        switch value {
                        case .integer(let v): Value(string: String(v))
                        case .real(let v): Value(string: String(v))
                        case .text(let v): Value(string: v)
                        case .blob(let v): Value(string: String(decoding: v, as: UTF8.self))
                        case .null: Value(string: nil)
                        }
                    })))
                }
            }
            var numbered = "", n = 0
            for c in sql {
                if c == "?" { n += 1; numbered += "$\(n)" } else { numbered.append(c) }
            }
            let bindings: [any PostgresBindable] = parameters.map { ($0 as? any PostgresBindable) ?? String(describing: $0) }
            return try postgres!.query(numbered, bindings).map { row in
                Row(values: Dictionary(uniqueKeysWithValues: zip(row.columns, row.values.map { Value(string: $0.string) })))
            }
        } catch let error as SQLiteError {
            throw Failure(isUniqueViolation: error.isUniqueViolation, message: error.message)
        } catch let error as PostgresError {
            throw Failure(isUniqueViolation: error.isUniqueViolation, message: error.message)
        }
    }

    func scalar(_ sql: String, _ parameters: [Any] = []) throws -> Value? {
        guard let row = try query(sql, parameters).first else { return nil }
        return row.values.count == 1 ? row.values.first!.value : nil
    }

    func run(_ sql: String, _ parameters: [Any] = []) throws {
        _ = try query(sql, parameters)
    }
}
