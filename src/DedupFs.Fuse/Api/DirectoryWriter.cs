using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using DedupFs.Fuse.Protocol;

namespace DedupFs.Fuse.Api;

/// <summary>
/// Packs directory entries into a READDIR or READDIRPLUS reply, in place, without allocating.
/// Each record is a fuse_dirent (or fuse_direntplus) header, the name, and zero padding to an
/// 8-byte boundary. The kernel continues a listing by passing back the <c>nextOffset</c> of the
/// last entry it consumed, so offsets must be stable cookies, not byte positions.
/// </summary>
/// <remarks>
/// Lookup counts: for READDIRPLUS the kernel counts one lookup for every entry whose NodeId is
/// not 0 and whose name is not "." or ".." (fs/fuse/readdir.c). A filesystem adds one to its own
/// count exactly when <see cref="TryAdd"/> returned true and <see cref="CountsLookup"/> is true;
/// if the reply then fails to reach the kernel, the session forgets those lookups again.
/// </remarks>
public ref struct DirectoryWriter
{
    private readonly Span<byte> _buffer;
    private int _length;

    public DirectoryWriter(Span<byte> buffer, bool plus)
    {
        _buffer = buffer;
        IsPlus = plus;
        _length = 0;
    }

    /// <summary>True for READDIRPLUS: entries carry attributes and count as lookups.</summary>
    public bool IsPlus { get; }

    public readonly int Length => _length;

    public readonly bool IsEmpty => _length == 0;

    /// <summary>Whether the kernel takes a lookup reference for this entry of a READDIRPLUS reply.</summary>
    public readonly bool CountsLookup(ReadOnlySpan<byte> name, ulong nodeId) =>
        IsPlus && nodeId != 0 && !IsDotOrDotDot(name);

    public static bool IsDotOrDotDot(ReadOnlySpan<byte> name) =>
        (name.Length == 1 && name[0] == (byte)'.') || (name.Length == 2 && name[0] == (byte)'.' && name[1] == (byte)'.');

    /// <summary>
    /// Adds one entry; false when it does not fit (the caller stops and the kernel asks again
    /// from the offset of the last entry that fitted). For plain READDIR only
    /// <c>entry.Attr.Ino</c> and <c>entry.Attr.Mode</c> are used.
    /// </summary>
    public bool TryAdd(ReadOnlySpan<byte> name, in FuseEntryOut entry, ulong nextOffset)
    {
        int headerSize = IsPlus ? Unsafe.SizeOf<FuseDirentPlus>() : Unsafe.SizeOf<FuseDirent>();
        int recordSize = Align8(headerSize + name.Length);
        if (_length + recordSize > _buffer.Length)
        {
            return false;
        }

        var record = _buffer.Slice(_length, recordSize);
        var dirent = new FuseDirent
        {
            Ino = entry.Attr.Ino,
            Off = nextOffset,
            NameLen = (uint)name.Length,
            Type = (entry.Attr.Mode >> 12) & 0xF,
        };
        if (IsPlus)
        {
            var plus = new FuseDirentPlus { EntryOut = entry, Dirent = dirent };
            MemoryMarshal.Write(record, in plus);
        }
        else
        {
            MemoryMarshal.Write(record, in dirent);
        }

        name.CopyTo(record.Slice(headerSize));
        record.Slice(headerSize + name.Length).Clear();
        _length += recordSize;
        return true;
    }

    /// <summary>Adds a plain entry (READDIR) from an inode number and a mode.</summary>
    public bool TryAdd(ReadOnlySpan<byte> name, ulong ino, uint mode, ulong nextOffset)
    {
        var entry = new FuseEntryOut { Attr = new FuseAttr { Ino = ino, Mode = mode } };
        return TryAdd(name, in entry, nextOffset);
    }

    internal static int Align8(int value) => (value + 7) & ~7;
}
