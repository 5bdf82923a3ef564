import Foundation

/// The sample sidecar of docs/examples/sidecar-ldl.json (the ANS test patient, a fictitious
/// stay), built into the binary so that `passerelle selfcheck` runs from any folder once
/// installed. Keep it the same as the file.
public enum SampleSidecar {
    public static let ldl = Data(json.utf8)

    static let json = """
    {
      "kind": "ldl",
      "id": { "root": "1.2.250.1.999.1.1", "extension": "LDL-2026-000123" },
      "version_number": 1,
      "action": "new",
      "effective_time": "2026-11-20T14:30:00+01:00",
      "confidentiality": "N",
      "patient": {
        "ipp": { "value": "123456", "authority": "1.2.250.1.999.1.2" },
        "ins": { "value": "279035121518989", "oid": "1.2.250.1.213.1.4.10" },
        "identity_status": "QUAL",
        "traits": {
          "birth_name": "PAT-TROIS",
          "first_birth_given_name": "DOMINIQUE",
          "birth_given_names": "DOMINIQUE ALICE",
          "used_name": "PAT-TROIS",
          "used_given_name": "DOMINIQUE",
          "birth_date": "1979-03-28",
          "sex": "F",
          "birth_place": "51215"
        },
        "address": { "lines": ["1 rue de la Paix"], "postal_code": "51100", "city": "Reims", "country": "FRA" },
        "telecom": ["tel:+33600000000"]
      },
      "author": {
        "rpps": "01234567897",
        "family_name": "MEDECIN",
        "given_name": "Jean",
        "prefix": "Dr",
        "specialty": { "code": "G15_10/SM26", "code_system": "1.2.250.1.213.1.1.4.5", "display_name": "Qualifié en médecine générale (SM)" }
      },
      "structure": { "finess": "750803447", "name": "Hôpital de démonstration" },
      "stay": {
        "id": { "value": "S2026-0042", "authority": "1.2.250.1.999.1.3" },
        "admission": "2026-11-15T09:00:00+01:00",
        "discharge": "2026-11-20T11:00:00+01:00",
        "facility_type": { "code": "SA01", "code_system": "1.2.250.1.71.4.2.4", "display_name": "Etablissement public de santé" },
        "practice_setting": { "code": "ETABLISSEMENT", "code_system": "1.2.250.1.213.1.1.4.9", "display_name": "Etablissement de santé" }
      },
      "service_event": {
        "code": { "code": "IMP", "code_system": "2.16.840.1.113883.5.4", "display_name": "Hospitalisation (établissement, y compris HAD)" },
        "start": "2026-11-15T09:00:00+01:00",
        "end": "2026-11-20T11:00:00+01:00"
      },
      "flags": ["ACK_RECEPTION"],
      "destinations": ["dmp", "mssante_ps"],
      "mssante": {
        "recipients": ["dr.traitant@medecin.mssante.fr"],
        "ps_subject": "Lettre de liaison de sortie",
        "ps_body": "Veuillez trouver ci-joint la lettre de liaison de sortie."
      }
    }
    """
}
