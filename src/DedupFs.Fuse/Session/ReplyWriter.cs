using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using DedupFs.Fuse.Protocol;

namespace DedupFs.Fuse.Session;

/// <summary>
/// Builds one reply in place: a fuse_out_header followed by the body, in a buffer the worker
/// owns. Handlers write READ data, READDIR records and xattr values straight into
/// <see cref="Body"/>, so a reply is never copied before the single writev that sends it.
/// </summary>
internal ref struct ReplyWriter
{
    public static readonly int HeaderSize = Unsafe.SizeOf<FuseOutHeader>();

    private readonly Span<byte> _buffer;
    private readonly ulong _unique;

    public ReplyWriter(Span<byte> buffer, ulong unique)
    {
        _buffer = buffer;
        _unique = unique;
        Length = 0;
    }

    /// <summary>Bytes of the finished reply, header included; 0 while nothing is to be sent.</summary>
    public int Length { get; private set; }

    public readonly Span<byte> Body => _buffer.Slice(HeaderSize);

    public int Error(int errno)
    {
        WriteHeader(HeaderSize, -errno);
        return Length;
    }

    public int Ok<T>(in T value) where T : unmanaged
    {
        MemoryMarshal.Write(Body, in value);
        WriteHeader(HeaderSize + Unsafe.SizeOf<T>(), 0);
        return Length;
    }

    /// <summary>Sends the first <paramref name="size"/> bytes of <see cref="Body"/>, already filled in.</summary>
    public int OkBody(int size)
    {
        WriteHeader(HeaderSize + size, 0);
        return Length;
    }

    /// <summary>Sets the header's length for a reply whose body is scattered (see <see cref="Api.ReadBuffer"/>).</summary>
    public void SetLength(int length)
    {
        MemoryMarshal.Write(_buffer, (uint)length);
        Length = length;
    }

    /// <summary>An empty success (FLUSH, RELEASE, UNLINK...).</summary>
    public int Ok() => OkBody(0);

    private void WriteHeader(int length, int error)
    {
        var header = new FuseOutHeader { Len = (uint)length, Error = error, Unique = _unique };
        MemoryMarshal.Write(_buffer, in header);
        Length = length;
    }
}
