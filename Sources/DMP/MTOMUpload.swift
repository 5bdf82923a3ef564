import CurlKit
import Foundation
import IHE

extension MTOMMessage {
    /// A one-shot chunk producer for CurlKit (`UploadSource.stream`); at most `chunkSize`
    /// bytes of a document are read at a time.
    public func chunkStream(chunkSize: Int = 256 * 1024) -> ChunkStream {
        let reader = makeReader(chunkSize: chunkSize)
        return ChunkStream {
            do { return try reader.next() } catch { throw DMPError.transport("\(error)") }
        }
    }

    /// The CurlKit request body.
    public var uploadSource: UploadSource { .stream(chunkStream(), length: length) }
}
