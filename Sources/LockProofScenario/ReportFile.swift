import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Every report file LockProof writes goes through here: it is created as a new file beside its
/// name (`O_CREAT | O_EXCL | O_NOFOLLOW`, so nothing already there is opened, a link included) and
/// renamed over the name. A symbolic link at the name is replaced by the report, never followed:
/// a `junit.xml` planted in a shared folder as a link to `/etc/passwd` leaves `/etc/passwd` as it
/// was.
public enum ReportFile {
    /// Writes `data` as `name` in `directory`, replacing whatever is at the name.
    public static func write(_ data: Data, named name: String, in directory: URL) throws {
        let (descriptor, temporary) = try createTemporary(for: name, in: directory)
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        do {
            try handle.write(contentsOf: data)
            try handle.close()
            try moveIntoPlace(temporary, as: name, in: directory)
        } catch {
            try? handle.close()
            unlink(temporary)
            throw error
        }
    }

    public static func write(_ text: String, named name: String, in directory: URL) throws {
        try write(Data(text.utf8), named: name, in: directory)
    }

    /// Creates `name` in `directory` empty (replacing whatever is at the name) and returns it open
    /// for writing: for a file written while the run goes on (`NAME.history.jsonl`). The handle is
    /// the new file's own, so a link put at the name later is never written through either.
    public static func create(named name: String, in directory: URL) throws -> FileHandle {
        let (descriptor, temporary) = try createTemporary(for: name, in: directory)
        do {
            try moveIntoPlace(temporary, as: name, in: directory)
        } catch {
            close(descriptor)
            unlink(temporary)
            throw error
        }
        return FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
    }

    /// Refuses a report folder that is itself a symbolic link: whoever could plant it (in a shared
    /// /tmp) would choose where the reports, and their renames, land. The user may name the folder
    /// the link points to instead. Nil when `path` is acceptable (a folder, or nothing yet).
    public static func linkedFolderProblem(_ path: String) -> String? {
        // `link/` would make lstat look at the link's target.
        var name = Substring(path)
        while name.count > 1 && name.hasSuffix("/") { name = name.dropLast() }
        var status = stat()
        guard lstat(String(name), &status) == 0, (status.st_mode & S_IFMT) == S_IFLNK else { return nil }
        let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: String(name))) ?? "?"
        return "\(path) is a symbolic link (to \(target)); reports are never written through a link: give the folder itself"
    }

    private static func createTemporary(for name: String, in directory: URL) throws -> (Int32, String) {
        for _ in 0..<16 {
            let path = directory.appendingPathComponent(".\(name).\(UInt32.random(in: .min ... .max)).tmp").path
            let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
            if descriptor >= 0 { return (descriptor, path) }
            if errno != EEXIST { throw ReportFileError(path: directory.appendingPathComponent(name).path, errno: errno) }
        }
        throw ReportFileError(path: directory.appendingPathComponent(name).path, errno: EEXIST)
    }

    private static func moveIntoPlace(_ temporary: String, as name: String, in directory: URL) throws {
        let final = directory.appendingPathComponent(name).path
        guard rename(temporary, final) == 0 else { throw ReportFileError(path: final, errno: errno) }
    }
}

/// A report file that could not be written, with the system's reason.
public struct ReportFileError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let errno: Int32
    public var description: String { "cannot write \(path): \(String(cString: strerror(errno)))" }
}
