// MNT/.dedupfs: the daemon's control files, in the spirit of /sys/kernel/mm/ksm.
//
// The directory and its files have inode numbers far above any real one (real inodes count
// up from 2), are never stored, are absent from the root's listing (like a hidden mount
// point) and are always found by LOOKUP. Every file is opened with FOPEN_DIRECT_IO, so reads
// reach the daemon whatever size stat reported (0: the content is made at open).
//
//   pages_shared ... cache_misses   one statistic each, read-only, "VALUE\n"
//   stats.json                      the same statistics as one JSON object
//   pid                             the daemon's process id
//   inline_dedup                    read/write: "1" or "0" (PageEngineOptions.InlineDedup)
//   clone                           write "SRC\nDST" (paths from the mount root): DST becomes a
//                                   reflinked snapshot of SRC (a file or a whole tree, with
//                                   modes, owners, times, xattrs and hard links). The write
//                                   returns its length, or fails with the errno (ENOENT,
//                                   EEXIST, ENOTDIR, EINVAL...).
//   shares                          write a path, then read from offset 0 on the same handle:
//                                   JSON with the file's page count, its shared pages, its
//                                   merge figures, and every other file sharing pages with it.
//   ksm/                            the merge scanner, as /sys/kernel/mm/ksm: one file per
//                                   tunable (0644, owned by the mount's owner; a write goes
//                                   through MergeScanner.Set and fails with its errno: EINVAL,
//                                   EBUSY) and per statistic (0444; EACCES on write).
// clone and shares belong to the mount's owner (RootUid) with mode 0600: a clone reads files
// whatever their modes, so only the owner (and root) may ask for one.
using System.Globalization;
using System.Text;
using DedupFs.Fuse.Api;
using DedupFs.Fuse.Protocol;

namespace DedupFs.FileSystem;

/// <summary>Names of the files in MNT/.dedupfs (see the top of ControlDirectory.cs and README.md).</summary>
public static class ControlFiles
{
    /// <summary>The directory's name in the mount's root.</summary>
    public const string Directory = DedupFileSystem.ControlDirectoryName;

    /// <summary>The statistics, each a read-only file ("VALUE\n") and a key of stats.json.</summary>
    public static readonly IReadOnlyList<string> StatisticNames =
    [
        "pages_shared", "pages_sharing", "pages_unshared", "cow_ksm", "unique_pages", "inline_dedup_hits",
        "logical_bytes", "stored_bytes", "dedup_ratio", "cache_bytes", "cache_capacity_bytes", "cache_hits", "cache_misses",
    ];

    public const string StatsJson = "stats.json";
    public const string Pid = "pid";
    public const string InlineDedup = "inline_dedup";
    public const string Clone = "clone";
    public const string Shares = "shares";

    /// <summary>The merge scanner's subdirectory: one file per name of <see cref="KsmTunableNames"/> and <see cref="KsmStatisticNames"/>.</summary>
    public const string Ksm = "ksm";

    /// <summary>The scanner's writable files in ksm/ (kernel names).</summary>
    public static IReadOnlyList<string> KsmTunableNames => DedupFs.Pages.MergeScanner.TunableNames;

    /// <summary>The scanner's read-only files in ksm/ (kernel names).</summary>
    public static IReadOnlyList<string> KsmStatisticNames => DedupFs.Pages.MergeScanner.StatisticNames;
}

internal sealed class ControlHandle(ulong ino, byte[] content)
{
    public readonly ulong Ino = ino;
    public readonly byte[] Content = content;
    public byte[]? Response;
}

internal sealed class ControlDirectory
{
    public const ulong DirIno = 0xFFFF_FFFF_FFFF_0000UL;
    public const ulong KsmDirIno = DirIno + 0x1000;   // ksm/; its files follow it
    public static ReadOnlySpan<byte> NameBytes => ".dedupfs"u8;

    public static readonly IReadOnlyList<string> StatisticNames = ControlFiles.StatisticNames;

    public const string StatsJson = ControlFiles.StatsJson, Pid = ControlFiles.Pid, InlineDedup = ControlFiles.InlineDedup, Clone = ControlFiles.Clone, Shares = ControlFiles.Shares;

    private static readonly string[] FileNames = [.. StatisticNames, StatsJson, Pid, InlineDedup, Clone, Shares];
    private static readonly byte[][] FileNameBytes = [.. FileNames.Select(Encoding.ASCII.GetBytes)];
    private static readonly string[] KsmNames = [.. ControlFiles.KsmTunableNames, .. ControlFiles.KsmStatisticNames];
    private static readonly byte[][] KsmNameBytes = [.. KsmNames.Select(Encoding.ASCII.GetBytes)];
    private static ReadOnlySpan<byte> KsmBytes => "ksm"u8;

    private readonly DedupFileSystem _fs;
    private readonly long _createdNs = Inode.Now();

    public ControlDirectory(DedupFileSystem fs) => _fs = fs;

    public static bool Owns(ulong ino) => ino >= DirIno;

    /// <summary>Whether ino is one of the control directories (.dedupfs or .dedupfs/ksm).</summary>
    public static bool IsDirectory(ulong ino) => ino is DirIno or KsmDirIno;

    private static string? NameOf(ulong ino) => ino > DirIno && ino - DirIno - 1 < (ulong)FileNames.Length ? FileNames[ino - DirIno - 1] : null;

    private static string? KsmNameOf(ulong ino) => ino > KsmDirIno && ino - KsmDirIno - 1 < (ulong)KsmNames.Length ? KsmNames[ino - KsmDirIno - 1] : null;

    private static bool IsTunable(string name) => ControlFiles.KsmTunableNames.Contains(name);

    private FuseAttr Attr(ulong ino)
    {
        string? name = NameOf(ino), ksm = KsmNameOf(ino);
        uint mode = IsDirectory(ino) ? Inode.Dir | 0x16D // 0555
            : ksm != null ? (IsTunable(ksm) ? Inode.Reg | 0x1A4 : Inode.Reg | 0x124) // 0644 / 0444
            : name is Clone or Shares ? Inode.Reg | 0x180 // 0600
            : name == InlineDedup ? Inode.Reg | 0x1A4 // 0644
            : Inode.Reg | 0x124; // 0444
        ulong s = (ulong)(_createdNs / 1_000_000_000);
        uint ns = (uint)(_createdNs % 1_000_000_000);
        return new FuseAttr
        {
            Ino = ino, Mode = mode, Nlink = ino == DirIno ? 3u : ino == KsmDirIno ? 2u : 1u, Uid = _fs.Options.RootUid, Gid = _fs.Options.RootGid,
            BlkSize = 4096, Atime = s, AtimeNsec = ns, Mtime = s, MtimeNsec = ns, Ctime = s, CtimeNsec = ns,
        };
    }

    private FuseEntryOut Entry(ulong ino) => new() { NodeId = ino, Generation = 1, EntryValid = 3600, Attr = Attr(ino) };

    public int LookupSelf(out FuseEntryOut entry)
    {
        entry = Entry(DirIno);
        return Errno.Success;
    }

    public int Lookup(ulong parent, ReadOnlySpan<byte> name, out FuseEntryOut entry)
    {
        entry = default;
        if (!IsDirectory(parent)) return Errno.ENOTDIR;
        if (parent == DirIno && name.SequenceEqual(KsmBytes))
        {
            entry = Entry(KsmDirIno);
            return Errno.Success;
        }
        byte[][] names = parent == DirIno ? FileNameBytes : KsmNameBytes;
        ulong first = parent + 1;
        for (int i = 0; i < names.Length; i++)
        {
            if (!name.SequenceEqual(names[i])) continue;
            entry = Entry(first + (ulong)i);
            return Errno.Success;
        }
        return Errno.ENOENT;
    }

    public int GetAttr(ulong ino, out FuseAttrOut attr)
    {
        attr = default;
        if (!IsDirectory(ino) && NameOf(ino) == null && KsmNameOf(ino) == null) return Errno.ENOENT;
        attr.Attr = Attr(ino);
        return Errno.Success;
    }

    public int Open(FuseRequestContext ctx, ulong ino, int flags, out FuseOpenOut open)
    {
        open = default;
        bool writable = (flags & 3) != 0;
        if (KsmNameOf(ino) is { } ksm)
        {
            if (writable && !IsTunable(ksm)) return Errno.EACCES;
            _fs.Engine.Scanner.Get(ksm, out string value);
            open.Fh = _fs.AddHandle(new ControlHandle(ino, Encoding.UTF8.GetBytes(value + "\n")));
            open.OpenFlags = OpenReplyFlags.DirectIo;
            return Errno.Success;
        }
        string? name = NameOf(ino);
        if (name == null) return IsDirectory(ino) ? Errno.EISDIR : Errno.ENOENT;
        if (writable && name is not (InlineDedup or Clone or Shares)) return Errno.EACCES;
        byte[] content = name is Clone or Shares ? [] : Encoding.UTF8.GetBytes(Render(name));
        open.Fh = _fs.AddHandle(new ControlHandle(ino, content));
        open.OpenFlags = OpenReplyFlags.DirectIo;
        return Errno.Success;
    }

    public int Read(ulong fh, long offset, ref ReadBuffer data)
    {
        ControlHandle? h = _fs.GetHandle<ControlHandle>(fh);
        if (h == null) return Errno.EBADF;
        byte[] content = h.Response ?? h.Content;
        if (offset >= content.Length) return Errno.Success;
        int n = (int)Math.Min(data.Remaining, content.Length - offset);
        data.Append(content.AsSpan((int)offset, n));
        return Errno.Success;
    }

    public int Write(FuseRequestContext ctx, ulong fh, ReadOnlySpan<byte> data, out int written)
    {
        written = 0;
        ControlHandle? h = _fs.GetHandle<ControlHandle>(fh);
        if (h == null) return Errno.EBADF;
        string text = Encoding.UTF8.GetString(data).TrimEnd('\n', '\r', ' ', '\0');
        if (KsmNameOf(h.Ino) is { } ksm)
        {
            // MergeScanner.Set answers as the kernel's store functions do: 0, EINVAL, EBUSY, EACCES.
            int err = _fs.Engine.Scanner.Set(ksm, text);
            if (err == 0) written = data.Length;
            return err;
        }
        int rc;
        switch (NameOf(h.Ino))
        {
            case InlineDedup:
                if (text is not ("0" or "1")) return Errno.EINVAL;
                _fs.Engine.Options.InlineDedup = text == "1";
                rc = Errno.Success;
                break;
            case Clone:
                int newline = text.IndexOf('\n');
                if (newline < 0) return Errno.EINVAL;
                rc = _fs.ClonePath(text[..newline].Trim('\r'), text[(newline + 1)..].Trim('\r'));
                break;
            case Shares:
                rc = _fs.SharesOf(text, out string json);
                if (rc == 0) h.Response = Encoding.UTF8.GetBytes(json);
                break;
            default:
                return Errno.EACCES;
        }
        if (rc == 0) written = data.Length;
        return rc;
    }

    public int ReadDir(ulong dir, long offset, ref DirectoryWriter writer)
    {
        if (!IsDirectory(dir)) return Errno.ENOTDIR;
        byte[][] names = dir == DirIno ? [.. FileNameBytes, KsmBytes.ToArray()] : KsmNameBytes;
        ulong parent = dir == DirIno ? 1 : DirIno;
        for (long i = offset; i < names.Length + 2; i++)
        {
            ReadOnlySpan<byte> name = i == 0 ? "."u8 : i == 1 ? ".."u8 : names[i - 2];
            ulong ino = i == 0 ? dir : i == 1 ? parent : dir == DirIno && i - 2 == FileNameBytes.Length ? KsmDirIno : dir + (ulong)(i - 1);
            // "." and ".." carry no lookup (the kernel takes none for them); the files are
            // never freed, so their lookups need no counting.
            FuseEntryOut entry = i < 2 ? new FuseEntryOut { Attr = Attr(dir) } : Entry(ino);
            if (i == 1) entry.Attr.Ino = parent;
            if (!writer.TryAdd(name, in entry, (ulong)(i + 1))) break;
        }
        return Errno.Success;
    }

    /// <summary>The value of one statistic file, or of stats.json / pid / inline_dedup.</summary>
    public string Render(string name)
    {
        if (name == Pid) return Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n";
        if (name == InlineDedup) return _fs.Engine.Options.InlineDedup ? "1\n" : "0\n";
        var stats = _fs.Statistics();
        if (name != StatsJson) return stats[name] + "\n";
        var sb = new StringBuilder("{");
        foreach (var (key, value) in stats)
        {
            sb.Append('"').Append(key).Append("\":");
            // Numbers as numbers; the odd text value (advisor_mode) as a JSON string.
            if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out _)) sb.Append(value);
            else sb.Append(System.Text.Json.JsonSerializer.Serialize(value));
            sb.Append(',');
        }
        sb[^1] = '}';
        return sb.Append('\n').ToString();
    }
}
