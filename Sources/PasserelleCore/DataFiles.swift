import Foundation

/// Where Passerelle's data files are — the one place that decides it, for `run`, `build`,
/// `selfcheck` and the demo.
///
/// Two layouts exist:
/// - a repository checkout, the current folder being its root (`swift build`, scripts/run.sh,
///   the tests): `Templates/`, `Certificates/make-test-pki.sh`, the shared conformance kit in
///   `../shared`;
/// - an install (the Debian packages, or any `PREFIX/bin` + `PREFIX/share` copy): the files
///   under `PREFIX/share/passerelle` (and `PREFIX/share/passerelle-demo` for the demo-only
///   ones), `PREFIX` being the folder above the running executable's `bin/`.
///
/// Each file is taken from the checkout when it is there, else from the install; an explicit
/// option or environment variable always wins (the callers handle those).
public enum DataFiles {
    /// One data file or folder: where a checkout and an install keep it.
    public struct Item: Sendable {
        /// Relative to the current folder (a repository root).
        public var checkout: String
        /// Relative to the install prefix (the folder above `bin/`), or absolute.
        public var installed: String
        /// A file inside the folder that proves it is the right one (e.g. a template).
        public var marker: String?

        public init(checkout: String, installed: String, marker: String? = nil) {
            self.checkout = checkout
            self.installed = installed
            self.marker = marker
        }
    }

    /// The CDA, XDM and mail templates.
    public static let templates = Item(checkout: "Templates", installed: "share/passerelle/Templates", marker: "cda/n1-pdf.xml")
    /// The official CDA schema (ANS CDA_extended.xsd and what it includes).
    public static let cdaSchema = Item(checkout: "../shared/conformance/cda/xsd/cda/CDA_extended.xsd",
                                       installed: "share/passerelle/cda/CDA_extended.xsd")
    /// The script that makes a throwaway test PKI (openssl CLI): selfcheck and the demo.
    public static let testPKIScript = Item(checkout: "Certificates/make-test-pki.sh", installed: "share/passerelle/make-test-pki.sh")
    // The demo-only items (package passerelle-demo) are declared in passerelle-testbed: the
    // production binary holds no trace of the demo (CLITests/ProductionBinaryTests).

    /// The running executable, through /proc/self/exe: right whether it was started by a path,
    /// through $PATH or through a symbolic link.
    public static var executable: URL {
        let path = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: path).standardizedFileURL
    }

    /// The install prefix: the folder above the executable's folder (`/usr` for `/usr/bin/passerelle`).
    public static var prefix: URL { executable.deletingLastPathComponent().deletingLastPathComponent() }

    /// `item` in the checkout (the current folder) when it is there, else in the install; the
    /// install path when neither exists, so that a message names where it was looked for.
    public static func locate(_ item: Item, currentDirectory: URL? = nil) -> URL {
        let cwd = currentDirectory ?? URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        let checkout = cwd.appendingPathComponent(item.checkout).standardizedFileURL
        if exists(checkout, item) { return checkout }
        return installed(item)
    }

    /// Where an install keeps `item`.
    public static func installed(_ item: Item) -> URL {
        item.installed.hasPrefix("/") ? URL(fileURLWithPath: item.installed)
            : prefix.appendingPathComponent(item.installed).standardizedFileURL
    }

    /// Whether `item` was found in the checkout (the current folder is a repository root).
    public static func isInCheckout(_ item: Item, currentDirectory: URL? = nil) -> Bool {
        let cwd = currentDirectory ?? URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        return exists(cwd.appendingPathComponent(item.checkout).standardizedFileURL, item)
    }

    private static func exists(_ url: URL, _ item: Item) -> Bool {
        FileManager.default.fileExists(atPath: item.marker.map { url.appendingPathComponent($0).path } ?? url.path)
    }

    /// The templates folder: `explicit` (--templates), else $PASSERELLE_TEMPLATES, else as ``locate(_:currentDirectory:)``.
    public static func templatesFolder(explicit: String?) -> URL {
        if let explicit { return URL(fileURLWithPath: explicit) }
        if let env = ProcessInfo.processInfo.environment["PASSERELLE_TEMPLATES"], !env.isEmpty { return URL(fileURLWithPath: env) }
        return locate(templates)
    }
}
