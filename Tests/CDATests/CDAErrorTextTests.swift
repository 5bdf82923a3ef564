import Foundation
import Testing
import PasserelleCore
import XMLKit
@testable import CDA

/// The French of CDA build and check errors (the refusal texts, `[intake] language`).
@Suite struct CDAErrorTextTests {
    @Test func frenchTextsKeepTheKeyAndTheFix() {
        let missing = CDAError.invalidMetadata([MetadataProblem(
            "stay.facility_type", "required: healthcare facility type from JDV_J02 (e.g. SA01, code system 1.2.250.1.71.4.2.4)")])
        #expect(missing.text(.fr) == "les métadonnées ne permettent pas de construire le document CDA (1 problème) :\n"
                + "  - stay.facility_type : obligatoire : le type d'établissement du jeu de valeurs JDV_J02 (par exemple SA01, "
                + "système de codes 1.2.250.1.71.4.2.4)")
        #expect(missing.text(.en) == missing.description)
        #expect(CDAError.notAPDF(reason: "no %%EOF marker at its end: the file is truncated or damaged").text(.fr)
                == "le corps du document n'est pas un fichier PDF (pas de marque %%EOF à la fin : le fichier est tronqué ou abîmé) ; "
                + "envoyez le PDF lui-même")
        #expect(CDAError.identity(.invalidBirthPlace).text(.fr).hasPrefix("le lieu de naissance doit être un code officiel géographique"))
        #expect(CDAError.invalidINS(.invalidSexDigit).text(.fr).hasPrefix("patient.ins : le matricule INS doit commencer par 1 ou 2"))
        let header = CDAError.invalidHeader([CDAProblem("ClinicalDocument/id", "required", line: 12)])
        #expect(header.text(.fr) == "l'en-tête du CDA enfreint 1 règle (élément, puis la règle en anglais) :\n  - ligne 12 : ClinicalDocument/id : required")
        let doctype = CDAError.notWellFormed(.doctypeRefused(declaration: "<!DOCTYPE x>", line: 2))
        #expect(doctype.text(.fr).hasPrefix("DOCTYPE interdit dans un CDA"))
        #expect(doctype.text(.fr).contains("(line 2)"), "the English detail keeps the line")
    }
}
