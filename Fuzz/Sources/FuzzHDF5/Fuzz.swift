import FuzzDriver
import MoECkpt

#if canImport(Glibc)
import Glibc
#endif

/// The HDF5 open path (libhdf5 reads from a file): structure, types, and every dataset's bytes.
@_cdecl("FuzzHDF5_main")
func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    let path = "/dev/shm/moeckpt-fuzz-\(getpid()).h5"
    return fuzz(argc, argv) { bytes in
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return }
        _ = write(fd, bytes.baseAddress, bytes.count)
        close(fd)
        guard let checkpoint = try? HDF5File.open(path) else { return }
        for tensor in checkpoint.tensors where tensor.byteCount < 1 << 26 { _ = try? tensor.load() }
    }
}
