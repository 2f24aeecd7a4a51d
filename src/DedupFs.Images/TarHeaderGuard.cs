using System.Text;

namespace DedupFs.Images;

/// <summary>
/// Sits between a layer's tar bytes and System.Formats.Tar and follows the archive's block
/// structure, header by header, to refuse metadata records that claim to be huge. The reader
/// allocates a PAX ('x', 'g') or GNU long-name ('L', 'K') record's whole declared size up front:
/// a 4 KiB layer that declares a 1 GiB PAX header would cost 1 GiB of memory before any check.
/// To stay in step with the reader it honours a PAX "size" record, as the reader does.
/// </summary>
internal sealed class TarHeaderGuard(Stream inner, int maxMetadata) : ForwardReadStream
{
    private const int Block = 512;
    private readonly byte[] _header = new byte[Block];
    private long _position;
    private long _nextHeader;
    private int _zeroBlocks;

    // The data of the current PAX 'x' record, collected to learn a "size" override.
    private MemoryStream? _pax;
    private long _paxStart, _paxEnd;
    private long? _sizeOverride;

    public override int Read(Span<byte> buffer)
    {
        int n = inner.Read(buffer);
        if (_zeroBlocks < 2) Inspect(buffer[..n]);
        _position += n;
        return n;
    }

    private void Inspect(ReadOnlySpan<byte> data)
    {
        long cursor = _position, end = _position + data.Length;
        while (cursor < end && _zeroBlocks < 2)
        {
            if (cursor < _nextHeader)
            {
                long stop = Math.Min(end, _nextHeader);
                if (_pax is not null)
                {
                    long from = Math.Max(cursor, _paxStart), to = Math.Min(stop, _paxEnd);
                    if (from < to) _pax.Write(data[(int)(from - _position)..(int)(to - _position)]);
                    if (stop >= _paxEnd) FinishPax();
                }

                cursor = stop;
                continue;
            }

            int already = (int)(cursor - _nextHeader);
            int take = (int)Math.Min(Block - already, end - cursor);
            data.Slice((int)(cursor - _position), take).CopyTo(_header.AsSpan(already));
            cursor += take;
            if (already + take == Block) ParseHeader();
        }
    }

    private void ParseHeader()
    {
        long here = _nextHeader;
        if (!_header.AsSpan().ContainsAnyExcept((byte)0))
        {
            _zeroBlocks++; // two in a row end the archive; what follows is padding
            _nextHeader = here + Block;
            return;
        }

        _zeroBlocks = 0;
        long size = Size(_header.AsSpan(124, 12));
        char type = (char)_header[156];
        bool metadata = type is 'x' or 'g' or 'L' or 'K';
        if (metadata)
        {
            if (size > maxMetadata)
                throw new InvalidDataException($"a '{type}' metadata record of {size} bytes (more than {maxMetadata}): refusing to buffer it");
            if (type == 'x')
            {
                _pax = new MemoryStream((int)size);
                _paxStart = here + Block;
                _paxEnd = _paxStart + size;
                if (size == 0) FinishPax();
            }
        }
        else
        {
            if (_sizeOverride is long over) size = over;
            _sizeOverride = null;
            EntryXattrs = _pendingXattrs;
            _pendingXattrs = null;
        }

        if (size < 0) throw new InvalidDataException("a negative entry size");
        _nextHeader = here + Block + (size + Block - 1) / Block * Block;
    }

    /// <summary>
    /// The raw bytes of the SCHILY.xattr.* values in the PAX record of the entry whose header was
    /// read last (the reader is in step with us: it has just returned that entry), or null.
    /// </summary>
    public Dictionary<string, byte[]>? EntryXattrs { get; private set; }

    private Dictionary<string, byte[]>? _pendingXattrs;

    private void FinishPax()
    {
        // Records are "LENGTH key=value\n", LENGTH counting bytes. Parsed here as bytes because
        // the reader hands values over UTF-8-decoded, which garbles binary xattrs; "size" moves
        // where the next header is.
        ReadOnlySpan<byte> text = _pax!.GetBuffer().AsSpan(0, (int)_pax.Length);
        _pax = null;
        while (text.Length > 0)
        {
            int space = text.IndexOf((byte)' ');
            if (space <= 0 || !int.TryParse(Encoding.ASCII.GetString(text[..space]), out int length) || length <= space + 2 || length > text.Length) break;
            var record = text[(space + 1)..(length - 1)];
            text = text[length..];
            int eq = record.IndexOf((byte)'=');
            if (eq < 0) continue;
            string key = Encoding.UTF8.GetString(record[..eq]);
            var value = record[(eq + 1)..];
            if (key == "size" && long.TryParse(Encoding.ASCII.GetString(value), out long s)) _sizeOverride = s;
            else if (key.StartsWith("SCHILY.xattr.", StringComparison.Ordinal))
                (_pendingXattrs ??= new(StringComparer.Ordinal))[key["SCHILY.xattr.".Length..]] = value.ToArray();
        }
    }

    // Octal digits, or GNU's base-256 (high bit set) for sizes beyond 8 GiB.
    private static long Size(ReadOnlySpan<byte> field)
    {
        if ((field[0] & 0x80) != 0)
        {
            long v = field[0] & 0x7F;
            for (int i = 1; i < field.Length; i++) v = (v << 8) | field[i];
            return v;
        }

        long value = 0;
        foreach (byte b in field)
        {
            if (b is (byte)' ' or 0)
            {
                if (value > 0) break;
                continue;
            }

            if (b is < (byte)'0' or > (byte)'7') return 0; // the reader will say what is wrong
            value = value * 8 + (b - '0');
        }

        return value;
    }

    public override long Position { get => _position; set => throw new NotSupportedException(); }

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }
}
