// Small facts about 4 KiB of bytes: its content hash and whether it is all zeros.
//
// The hash is xxHash64 (seed 0, K4os.Hash.xxHash), the same function Store's fsck uses to
// verify the content index without referencing this project. ~15 GB/s,
// so hashing every written page costs little beside the write itself. It only nominates
// candidates: identity is always decided by comparing bytes.
using K4os.Hash.xxHash;

namespace DedupFs.Pages;

/// <summary>Hash and zero test of page contents.</summary>
public static class PageContent
{
    /// <summary>Bytes per page.</summary>
    public const int Size = DedupFs.Store.Store.PageSize;

    /// <summary>xxHash64 (seed 0) of <paramref name="page"/>: the content index key.</summary>
    public static ulong Hash(ReadOnlySpan<byte> page) => XXH64.DigestOf(page);

    /// <summary>True when every byte is zero: such a page is never stored, it becomes a hole.</summary>
    public static bool IsZero(ReadOnlySpan<byte> page) => !page.ContainsAnyExcept((byte)0);
}
