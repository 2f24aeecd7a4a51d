namespace DedupFs.FileSystem;

/// <summary>Where file data is cached: once per distinct page in the daemon, or per file in the kernel.</summary>
public enum CacheMode
{
    /// <summary>Reads and writes bypass the kernel's per-file page cache (direct I/O, mmap through
    /// DIRECT_IO_ALLOW_MMAP): each distinct page is cached once, in the daemon's page cache.</summary>
    Shared,

    /// <summary>The kernel's page cache per file (KEEP_CACHE): faster re-reads, one copy per file.</summary>
    Kernel,
}

/// <summary>How a DedupFs mount behaves; set from the mount options.</summary>
public sealed class FileSystemOptions
{
    public CacheMode Cache { get; init; } = CacheMode.Shared;

    /// <summary>How long the kernel may trust names and attributes. The daemon is the only writer,
    /// so these can be long; every change the daemon makes itself is invalidated explicitly.</summary>
    public TimeSpan EntryTimeout { get; init; } = TimeSpan.FromHours(1);

    public TimeSpan AttrTimeout { get; init; } = TimeSpan.FromHours(1);

    /// <summary>Mounted read-only: every change answers EROFS.</summary>
    public bool ReadOnly { get; init; }

    /// <summary>Owner of the root directory when a new store is created.</summary>
    public uint RootUid { get; init; }

    public uint RootGid { get; init; }

    /// <summary>Whether files the user.dedupfs.merge xattr says nothing about may be merged by the merge
    /// scanner (the mount option mergeable=on|off; madvise(MADV_MERGEABLE) for every file when on).</summary>
    public bool MergeableByDefault { get; init; } = true;

    /// <summary>Where the filesystem logs (one line per event worth a line); null: nowhere.</summary>
    public TextWriter? Log { get; init; }
}
