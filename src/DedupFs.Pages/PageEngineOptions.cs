// The engine's knobs. Inline dedup is on by default: every whole-page write is looked up in
// the content index and shared when a byte compare proves it identical, so copies written
// with cp/tar/docker pull cost no space from the start; the merge pass catches the rest.
namespace DedupFs.Pages;

/// <summary>Options of a <see cref="PageEngine"/>.</summary>
public sealed class PageEngineOptions
{
    /// <summary>Look up every whole-page write in the content index and share it when identical (byte-compared).
    /// Settable while running (the control file .dedupfs/inline_dedup): writes read it once per batch.</summary>
    public bool InlineDedup { get; set; } = true;

    /// <summary>Page cache budget in bytes.</summary>
    public long CacheBytes { get; init; } = 256L << 20;

    /// <summary>Allocate the cache's memory up front (RSS = budget at once) instead of as it fills.</summary>
    public bool PrefaultCache { get; init; }

    /// <summary>Whether mappings may be merged by the merge scanner unless <see cref="Mapping.Mergeable"/> says otherwise.</summary>
    public bool MergeableByDefault { get; init; } = true;

    /// <summary>Called for every Mapping object the engine creates, before anyone uses it, whoever opened it
    /// (the filesystem, a clone, the merge scanner walking stored files): the place to set
    /// <see cref="Mapping.Mergeable"/> from the user.dedupfs.merge xattr and <see cref="Mapping.MergeDomain"/>
    /// from the owner's uid. It may run twice for one inode when two threads open it at once (one object is
    /// kept). It must not open mappings itself. Settable because the engine is opened before the filesystem
    /// that knows the xattrs exists (DedupFileSystem installs itself here); set it before any mapping opens.</summary>
    public Action<Mapping>? ConfigureMapping { get; set; }
}
