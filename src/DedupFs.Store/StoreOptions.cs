// Knobs of a store. The group-commit thresholds mirror ext4's commit= interval: between sync
// points work is batched, and a background commit bounds how much an unsynced crash can lose
// and how many freed slots wait for a durable commit before they can be reused.
namespace DedupFs.Store;

/// <summary>Options for <see cref="Store.Open"/>.</summary>
public sealed class StoreOptions
{
    /// <summary>Create the store if the directory is empty or missing.</summary>
    public bool Create { get; init; } = true;

    /// <summary>Commit in the background at least this often when there is work; null disables.</summary>
    public TimeSpan? CommitInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Commit in the background once this many pages have been written or freed since the last commit.</summary>
    public long CommitAfterPages { get; init; } = 64 * 1024;

    /// <summary>LMDB map size (address space reserved for metadata; the file grows as used).</summary>
    public long MetadataMapSize { get; init; } = 64L << 30;

    /// <summary>Where log lines go (checksum failures, recovery notes). Defaults to stderr.</summary>
    public Action<string>? Log { get; init; }

    /// <summary>Keep pages.dat out of the kernel's page cache (after each commit and every 32 MiB read),
    /// so that a page is cached once, by the daemon; see Store.HostCache.cs.</summary>
    public bool DropHostCache { get; init; } = true;
}
