import ArgumentParser
import Foundation
import PasserelleCore

/// `passerelle ins …`
struct INSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ins",
        abstract: "Check INS matricules and identity traits.",
        subcommands: [INSCheckCommand.self]
    )
}

/// `passerelle ins check <INS> [--oid …] [--status …] [traits…]`
struct INSCheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check an INS matricule (format and key) and, optionally, the identity traits against it.",
        discussion: """
        The matricule is 15 characters (spaces allowed); its key must equal \
        97 − (first 13 digits mod 97), with 2A counted as 19 and 2B as 18. \
        Given traits are compared with the NIR: sex digit, birth year, birth month \
        (when the NIR month is 01–12) and département of birth (99 for a birth abroad).

        Examples:
          passerelle ins check 279035121518989 --oid 1.2.250.1.213.1.4.10
          passerelle ins check 279035121518989 --status QUAL \\
            --sex F --birth-date 1979-03-28 --birth-place 51215 \\
            --birth-name DUPONT --given-names "MARIE CLAIRE"

        Exit codes:
          0  the INS is valid (and the traits, if given, agree with it)
          1  invalid input: malformed INS, wrong key, unknown OID, bad option value,
             or status QUAL without all the INS traits
          2  the traits contradict the INS (the output names the trait)
        """
    )

    @Argument(help: ArgumentHelp("The INS matricule (NIR or NIA), 15 characters.", valueName: "INS"))
    var ins: String

    @Option(help: ArgumentHelp(
        "INS OID: 1.2.250.1.213.1.4.8 INS-NIR (default), .9 INS-NIA, .10 INS-NIR de test, .11 INS-NIR de démonstration.",
        valueName: "oid"))
    var oid: String = INSKind.nir.oid

    @Option(help: ArgumentHelp("Identity status: PROV, RECUP, VALI or QUAL. QUAL requires every INS trait.", valueName: "status"))
    var status: String?

    @Option(help: ArgumentHelp("Sex: F, M or U.", valueName: "sex"))
    var sex: String?

    @Option(help: ArgumentHelp("Birth date, YYYY-MM-DD.", valueName: "date"))
    var birthDate: String?

    @Option(help: ArgumentHelp("Birth place: INSEE COG code (51215, 2A004, 97411, or 99xxx for a country).", valueName: "code"))
    var birthPlace: String?

    @Option(help: ArgumentHelp("Birth name (nom de naissance).", valueName: "name"))
    var birthName: String?

    @Option(help: ArgumentHelp("Birth given names, space-separated; the first one is the first birth given name.", valueName: "names"))
    var givenNames: String?

    @OptionGroup var logging: LogOptions

    func run() async throws {
        LogSetup.bootstrap(level: logging.logLevel ?? .info)

        // Option values first: a typo there is invalid input (exit 1), not a mismatch.
        var inputErrors: [String] = []
        var identityStatus: IdentityStatus?
        if let status {
            identityStatus = IdentityStatus(code: status)
            if identityStatus == nil { inputErrors.append("--status '\(status)' is not PROV, RECUP, VALI or QUAL") }
        }
        var traits = IdentityTraits(birthName: birthName)
        if let givenNames {
            let names = givenNames.split(separator: " ").map(String.init)
            traits.birthGivenNames = names.joined(separator: " ")
            traits.firstBirthGivenName = names.first
        }
        if let sex {
            traits.sex = Sex(rawValue: sex.uppercased())
            if traits.sex == nil { inputErrors.append("--sex '\(sex)' is not F, M or U") }
        }
        if let birthDate {
            traits.birthDate = CalendarDate(iso: birthDate)
            if traits.birthDate == nil { inputErrors.append("--birth-date '\(birthDate)' is not a valid date YYYY-MM-DD") }
        }
        if let birthPlace {
            if IdentityTraits.isCOGCode(birthPlace) { traits.birthPlace = birthPlace.uppercased() }
            else { inputErrors.append(IdentityError.invalidBirthPlace.description + " (--birth-place)") }
        }

        let checked: INS
        do {
            checked = try INS(ins, oid: oid)
        } catch {
            inputErrors.insert("invalid INS: \(error.description)", at: 0)
            fail(inputErrors, code: 1)
        }
        if !inputErrors.isEmpty { fail(inputErrors, code: 1) }

        print("INS \(checked.masked) is valid: \(checked.kind.label) (OID \(checked.oid)), key \(checked.key) ok.")
        let month = Int(checked.birthMonthDigits).map { (1...12).contains($0) } == true ? checked.birthMonthDigits : "unknown (\(checked.birthMonthDigits))"
        print("  sex digit \(checked.sexDigit), birth year ..\(checked.birthYearDigits), month \(month), place \(checked.birthDepartement == "99" ? "abroad (99)" : "département \(checked.birthDepartement)")")
        if checked.value == "279035121518989" && checked.kind != .nirTest {
            print("  note: this is the ANS test INS; documents use OID \(INSKind.nirTest.oid) for it")
        }

        let given = traitsGiven(traits)
        if !given.isEmpty {
            do {
                try traits.checkConsistency(with: checked)
                print("  traits agree with the INS (\(given.joined(separator: ", ")))")
            } catch {
                fail([error.description], code: 2)
            }
        }
        if let identityStatus {
            if identityStatus == .qualified {
                let missing = traits.missingINSTraits
                if !missing.isEmpty {
                    fail([IdentityError.missingTraitsForQualifiedIdentity(missing).description
                          + " (options: --birth-name, --given-names, --birth-date, --sex, --birth-place)"], code: 1)
                }
                print("  status QUAL (qualifiée): the INS may be carried in shared documents")
            } else {
                print("  status \(identityStatus.rawValue) (\(identityStatus.label)): the INS must NOT be carried downstream; only QUAL may")
            }
        }
    }

    private func traitsGiven(_ t: IdentityTraits) -> [String] {
        var out: [String] = []
        if t.sex != nil { out.append("sex") }
        if t.birthDate != nil { out.append("birth date") }
        if t.birthPlace != nil { out.append("birth place") }
        return out
    }

    private func fail(_ messages: [String], code: Int32) -> Never {
        for message in messages { printError(message) }
        Self.exit(withError: ExitCode(code))
    }
}
