// A content page's identity: its slot in the page data file plus one, so that the default
// value (0) means "no page", which a mapping reads as a hole. 32 bits address 2^32 slots of
// 4 KiB = 16 TiB of unique data per store; keeping ids at 4 bytes halves the memory of every
// mapping's slot table and of the content index (the per-unique-page budget is 32 bytes).
//
// Ids are reused: a freed slot gets a new page after the commit that freed it is durable.
// Anything that caches by id (the page cache) must drop the id when the page is freed; the
// Pages layer does so before it releases the last reference.
namespace DedupFs.Store;

/// <summary>Identity of a content page: slot number + 1; <see cref="None"/> is a hole.</summary>
public readonly record struct PageId(uint Value)
{
    /// <summary>No page: a hole, which reads as zeros.</summary>
    public static readonly PageId None = default;

    /// <summary>True for <see cref="None"/>.</summary>
    public bool IsNone => Value == 0;

    /// <summary>The slot in the page data file (valid only when not <see cref="None"/>).</summary>
    public long Slot => (long)Value - 1;

    /// <summary>The id of the page stored in <paramref name="slot"/>.</summary>
    public static PageId FromSlot(long slot) => new((uint)(slot + 1));

    /// <inheritdoc/>
    public override string ToString() => IsNone ? "hole" : $"page#{Value}";
}
