// The KSM counters the Pages layer maintains, with the kernel's names and meanings
// (Documentation/admin-guide/mm/ksm.rst). They are updated at once on every refcount
// transition, not lazily at the next scan:
//   pages_shared   pages with refcount >= 2           (1 -> 2: +1, 2 -> 1: -1)
//   pages_sharing  sum over shared pages of refcount-1 (each ref added/dropped on a shared page)
// so pages_shared + pages_sharing == number of slots mapping a shared page (invariant 4).
// cow_ksm and the other event counters are cumulative and never go down.
namespace DedupFs.Pages;

/// <summary>A snapshot of the page-sharing statistics.</summary>
public readonly record struct KsmStatistics(
    long PagesShared,
    long PagesSharing,
    long CowKsm,
    long PagesMerged,
    long PagesUnmerged,
    long InlineDedupHits,
    long ZeroPagesSkipped,
    long UniquePages)
{
    /// <summary>Bytes saved by sharing: pages_sharing x 4096 (general_profit without rmap_item cost).</summary>
    public long SavedBytes => PagesSharing * PageContent.Size;
}

internal sealed class KsmCounters
{
    public long PagesShared, PagesSharing, CowKsm, PagesMerged, PagesUnmerged, InlineDedupHits, ZeroPagesSkipped, UniquePages;

    // Called with the refcount after an increment.
    public void OnAddRef(uint now)
    {
        if (now == 1) Interlocked.Increment(ref UniquePages);
        else if (now == 2) { Interlocked.Increment(ref PagesShared); Interlocked.Increment(ref PagesSharing); }
        else Interlocked.Increment(ref PagesSharing);
    }

    // Called with the refcount after a decrement.
    public void OnRelease(uint now)
    {
        if (now == 0) Interlocked.Decrement(ref UniquePages);
        else if (now == 1) { Interlocked.Decrement(ref PagesShared); Interlocked.Decrement(ref PagesSharing); }
        else Interlocked.Decrement(ref PagesSharing);
    }

    public KsmStatistics Snapshot() => new(
        Interlocked.Read(ref PagesShared), Interlocked.Read(ref PagesSharing), Interlocked.Read(ref CowKsm),
        Interlocked.Read(ref PagesMerged), Interlocked.Read(ref PagesUnmerged), Interlocked.Read(ref InlineDedupHits),
        Interlocked.Read(ref ZeroPagesSkipped), Interlocked.Read(ref UniquePages));
}

// Refcount increments of one write batch, added to the counters once: three contended
// Interlocked adds per deduplicated page would otherwise be paid 32 times per 128 KiB write.
// Only for increments on pages that already had a reference (candidate pins); the caller adds
// the tally before anything in the batch can release one of those pins.
internal struct RefTally
{
    private int _shared, _sharing;

    public void Added(uint now)
    {
        if (now == 2) _shared++;
        if (now >= 2) _sharing++;
    }

    public readonly void AddTo(KsmCounters counters)
    {
        if (_shared != 0) Interlocked.Add(ref counters.PagesShared, _shared);
        if (_sharing != 0) Interlocked.Add(ref counters.PagesSharing, _sharing);
    }
}
