# Prints an HDF5 file by its contents (paths, dtypes, shapes, chunking, compression, a hash of each
# dataset, attributes), for comparing files that libhdf5 wrote at different times. Needs h5py.
import h5py, hashlib, sys
f = h5py.File(sys.argv[1], 'r')
out = []
def visit(name, obj):
    if isinstance(obj, h5py.Dataset):
        out.append(f"{name} {obj.dtype} {obj.shape} chunks={obj.chunks} comp={obj.compression} {obj.compression_opts} {hashlib.sha256(obj[()].tobytes()).hexdigest()[:16]} attrs={sorted((k, str(v)) for k, v in obj.attrs.items())}")
    else:
        out.append(f"{name}/ attrs={sorted((k, str(v)) for k, v in obj.attrs.items())}")
out.append(f"/ attrs={sorted((k, str(v)) for k, v in f.attrs.items())}")
f.visititems(visit)
print("\n".join(out))
