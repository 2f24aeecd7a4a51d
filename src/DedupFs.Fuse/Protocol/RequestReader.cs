using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace DedupFs.Fuse.Protocol;

/// <summary>
/// A cursor over a request's arguments that can never read past the end: every Try method
/// answers false on short data instead of throwing, so bytes from the kernel (or a fuzzer) can
/// only ever produce an error reply.
/// </summary>
public ref struct RequestReader
{
    private ReadOnlySpan<byte> _rest;

    public RequestReader(ReadOnlySpan<byte> arguments) => _rest = arguments;

    public readonly ReadOnlySpan<byte> Rest => _rest;

    public readonly int Remaining => _rest.Length;

    /// <summary>Reads a whole fixed-size structure.</summary>
    public bool TryRead<T>(out T value) where T : unmanaged
    {
        int size = Unsafe.SizeOf<T>();
        if (_rest.Length < size)
        {
            value = default;
            return false;
        }

        value = MemoryMarshal.Read<T>(_rest);
        _rest = _rest.Slice(size);
        return true;
    }

    /// <summary>
    /// Reads a structure the kernel may send in a shorter, older form (FUSE_COMPAT_*_SIZE):
    /// at least <paramref name="compatSize"/> bytes, at most the full size; missing fields are zero.
    /// </summary>
    public bool TryReadCompat<T>(int compatSize, int presentSize, out T value) where T : unmanaged
    {
        int size = Math.Min(presentSize, Unsafe.SizeOf<T>());
        if (size < compatSize || _rest.Length < size)
        {
            value = default;
            return false;
        }

        value = default;
        _rest.Slice(0, size).CopyTo(MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref value, 1)));
        _rest = _rest.Slice(size);
        return true;
    }

    /// <summary>Reads a NUL-terminated name; the span excludes the NUL.</summary>
    public bool TryReadName(out ReadOnlySpan<byte> name)
    {
        int nul = _rest.IndexOf((byte)0);
        if (nul < 0)
        {
            name = default;
            return false;
        }

        name = _rest.Slice(0, nul);
        _rest = _rest.Slice(nul + 1);
        return true;
    }

    public bool TryReadBytes(int count, out ReadOnlySpan<byte> bytes)
    {
        if (count < 0 || _rest.Length < count)
        {
            bytes = default;
            return false;
        }

        bytes = _rest.Slice(0, count);
        _rest = _rest.Slice(count);
        return true;
    }
}
