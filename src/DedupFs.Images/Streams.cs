using System.IO.Compression;
using System.Security.Cryptography;

namespace DedupFs.Images;

/// <summary>
/// The shape of every stream in this layer: read once, front to back, never written or sought.
/// Subclasses give Read(Span) and, where they know them, Length and Position.
/// </summary>
internal abstract class ForwardReadStream : Stream
{
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public abstract override int Read(Span<byte> buffer);

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

/// <summary>A read-only window [offset, offset+length) of a file: one blob inside an image archive.</summary>
internal sealed class FileWindowStream(string path, long offset, long length) : ForwardReadStream
{
    private readonly FileStream _file = new(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
    private long _position;

    public override long Length => length;
    public override long Position { get => _position; set => throw new NotSupportedException(); }

    public override int Read(Span<byte> buffer)
    {
        int want = (int)Math.Min(buffer.Length, length - _position);
        if (want <= 0) return 0;
        int n = RandomAccess.Read(_file.SafeFileHandle, buffer[..want], offset + _position);
        _position += n;
        return n;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _file.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>
/// Passes bytes through while hashing and counting them, and calls <paramref name="onRead"/>
/// after every read so limits are checked as the data streams, not after it has landed.
/// </summary>
internal sealed class HashingStream(Stream inner, HashAlgorithmName algorithm, Action<long>? onRead = null) : ForwardReadStream
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(algorithm);

    public long Count { get; private set; }

    public byte[] Hash() => _hash.GetHashAndReset();

    public override long Position { get => Count; set => throw new NotSupportedException(); }

    public override int Read(Span<byte> buffer)
    {
        int n = inner.Read(buffer);
        _hash.AppendData(buffer[..n]);
        Count += n;
        onRead?.Invoke(Count);
        return n;
    }

    /// <summary>Reads to the end, so the hash covers the whole stream (padding and trailers too).</summary>
    public void Drain()
    {
        byte[] buffer = new byte[64 * 1024];
        while (Read(buffer) > 0)
        {
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
            _hash.Dispose();
        }

        base.Dispose(disposing);
    }
}

/// <summary>A stream whose first bytes were already read (to look at the magic number) and are given back.</summary>
internal sealed class PrefixStream(byte[] prefix, Stream inner) : ForwardReadStream
{
    private int _used;


    public override int Read(Span<byte> buffer)
    {
        if (_used < prefix.Length)
        {
            int n = Math.Min(buffer.Length, prefix.Length - _used);
            prefix.AsSpan(_used, n).CopyTo(buffer);
            _used += n;
            return n;
        }

        return inner.Read(buffer);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }
}

internal enum Compression
{
    None,
    Gzip,
    Zstd,
}

internal static class Decompression
{
    /// <summary>Reads the magic number of <paramref name="blob"/> and returns the decompressed stream.</summary>
    public static Stream Open(Stream blob, out Compression kind)
    {
        byte[] magic = new byte[6];
        int got = 0;
        while (got < magic.Length)
        {
            int n = blob.Read(magic, got, magic.Length - got);
            if (n == 0) break;
            got += n;
        }

        var head = magic.AsSpan(0, got);
        var rest = new PrefixStream(head.ToArray(), blob);
        if (head.StartsWith((ReadOnlySpan<byte>)[0x1f, 0x8b]))
        {
            kind = Compression.Gzip;
            return new GZipStream(rest, CompressionMode.Decompress);
        }

        if (head.StartsWith((ReadOnlySpan<byte>)[0x28, 0xb5, 0x2f, 0xfd]))
        {
            kind = Compression.Zstd;
            return new ZstdSharp.DecompressionStream(rest);
        }

        if (head.StartsWith((ReadOnlySpan<byte>)[0xfd, (byte)'7', (byte)'z', (byte)'X', (byte)'Z', 0]))
            throw new InvalidDataException("xz-compressed layer: not supported (gzip, zstd or plain tar)");
        if (head.StartsWith("BZh"u8))
            throw new InvalidDataException("bzip2-compressed layer: not supported (gzip, zstd or plain tar)");
        kind = Compression.None;
        return rest;
    }
}
