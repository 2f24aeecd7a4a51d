// One live inode: the attributes the kernel sees, held in memory while the inode is in use and
// written to Store.Inodes as a record (see README.md for the format).
//
// Attributes change in memory and reach the store in two ways: namespace operations and
// SETATTR write the record at once, inside the same store mutation as the names they change
// (so a commit never sees a name without its inode); data operations (write, truncate by
// write, fallocate, atime) only mark the inode dirty, and the filesystem writes every dirty
// record from the store's Committing hook, so a stream of writes costs no metadata I/O per
// request. A regular file's size is its mapping's length and is never stored here.
using System.Buffers.Binary;
using DedupFs.Pages;

namespace DedupFs.FileSystem;

/// <summary>A live inode. Attribute fields are guarded by <see cref="Lock"/> (a leaf lock: never
/// held across a store mutation, a mapping call or another inode's lock).</summary>
internal sealed class Inode
{
    public const uint TypeMask = 0xF000, Dir = 0x4000, Reg = 0x8000, Lnk = 0xA000, Chr = 0x2000, Blk = 0x6000, Fifo = 0x1000, Sock = 0xC000;
    public const uint SetUid = 0x800, SetGid = 0x400, Sticky = 0x200, GroupExec = 0x8;
    private const byte RecordVersion = 1;
    private const int FixedSize = 1 + 6 * 4 + 8 + 4 * 8 + 8 + 2;

    public Inode(ulong ino) => Ino = ino;

    public ulong Ino { get; }

    public readonly Lock Lock = new();

    /// <summary>Serialises O_APPEND writes (length read, then write). Order: before the store gate.</summary>
    public readonly Lock AppendLock = new();

    public uint Mode;
    public uint Uid;
    public uint Gid;
    public uint Nlink;
    public uint Rdev;
    public uint Flags;
    public ulong Generation;
    public long AtimeNs;
    public long MtimeNs;
    public long CtimeNs;
    public long BtimeNs;

    /// <summary>Directories: the parent (for ".."); other types: the parent at creation (informative).</summary>
    public ulong Parent;

    /// <summary>Symlinks: the target bytes.</summary>
    public byte[]? Target;

    /// <summary>Regular files: the page mapping (the data and the size).</summary>
    public Mapping? Mapping;

    // Guarded by the inode table's lock.
    public long Lookups;
    public int OpenHandles;

    /// <summary>An O_TMPFILE inode with no name yet: linkat may give it one (I_LINKABLE).</summary>
    public bool Linkable;

    /// <summary>Set once the records are deleted: the object must not be used again.</summary>
    public bool Dead;

    public uint Type => Mode & TypeMask;

    public bool IsDir => Type == Dir;

    public bool IsReg => Type == Reg;

    public long Size => Type switch
    {
        Reg => Mapping?.Length ?? 0,
        Dir => 4096,
        Lnk => Target?.Length ?? 0,
        _ => 0,
    };

    public static long Now() => (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) * 100;

    /// <summary>The record stored under StoreKeys.Inode(Ino). Call under <see cref="Lock"/>.</summary>
    public byte[] Serialize()
    {
        int targetLength = Target?.Length ?? 0;
        var b = new byte[FixedSize + targetLength];
        var s = b.AsSpan();
        s[0] = RecordVersion;
        int o = 1;
        foreach (uint v in (ReadOnlySpan<uint>)[Mode, Uid, Gid, Nlink, Rdev, Flags])
        {
            BinaryPrimitives.WriteUInt32LittleEndian(s[o..], v);
            o += 4;
        }
        BinaryPrimitives.WriteUInt64LittleEndian(s[o..], Generation); o += 8;
        foreach (long t in (ReadOnlySpan<long>)[AtimeNs, MtimeNs, CtimeNs, BtimeNs])
        {
            BinaryPrimitives.WriteInt64LittleEndian(s[o..], t);
            o += 8;
        }
        BinaryPrimitives.WriteUInt64LittleEndian(s[o..], Parent); o += 8;
        BinaryPrimitives.WriteUInt16LittleEndian(s[o..], (ushort)targetLength); o += 2;
        Target?.CopyTo(s[o..]);
        return b;
    }

    /// <summary>An inode from its record; null if the record is not one this version reads.</summary>
    public static Inode? Deserialize(ulong ino, ReadOnlySpan<byte> s)
    {
        if (s.Length < FixedSize || s[0] != RecordVersion) return null;
        var n = new Inode(ino);
        int o = 1;
        n.Mode = BinaryPrimitives.ReadUInt32LittleEndian(s[o..]); o += 4;
        n.Uid = BinaryPrimitives.ReadUInt32LittleEndian(s[o..]); o += 4;
        n.Gid = BinaryPrimitives.ReadUInt32LittleEndian(s[o..]); o += 4;
        n.Nlink = BinaryPrimitives.ReadUInt32LittleEndian(s[o..]); o += 4;
        n.Rdev = BinaryPrimitives.ReadUInt32LittleEndian(s[o..]); o += 4;
        n.Flags = BinaryPrimitives.ReadUInt32LittleEndian(s[o..]); o += 4;
        n.Generation = BinaryPrimitives.ReadUInt64LittleEndian(s[o..]); o += 8;
        n.AtimeNs = BinaryPrimitives.ReadInt64LittleEndian(s[o..]); o += 8;
        n.MtimeNs = BinaryPrimitives.ReadInt64LittleEndian(s[o..]); o += 8;
        n.CtimeNs = BinaryPrimitives.ReadInt64LittleEndian(s[o..]); o += 8;
        n.BtimeNs = BinaryPrimitives.ReadInt64LittleEndian(s[o..]); o += 8;
        n.Parent = BinaryPrimitives.ReadUInt64LittleEndian(s[o..]); o += 8;
        int targetLength = BinaryPrimitives.ReadUInt16LittleEndian(s[o..]); o += 2;
        if (s.Length < o + targetLength) return null;
        if (n.Type == Lnk) n.Target = s.Slice(o, targetLength).ToArray();
        return n;
    }

    /// <summary>A directory entry's value: the child's inode number and its type (mode >> 12).</summary>
    public static byte[] DirentValue(ulong child, uint mode)
    {
        var b = new byte[9];
        BinaryPrimitives.WriteUInt64LittleEndian(b, child);
        b[8] = (byte)((mode & TypeMask) >> 12);
        return b;
    }

    public static (ulong Child, uint Type) ReadDirent(ReadOnlySpan<byte> value) =>
        (BinaryPrimitives.ReadUInt64LittleEndian(value), (uint)value[8] << 12);
}
