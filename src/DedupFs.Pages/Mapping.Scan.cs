// What the merge scanner needs from a mapping: whether it may be merged at all and with whom
// (Mergeable, MergeDomain, set by the filesystem from the user.dedupfs.merge xattr and the
// owner's uid), a lock-free peek at slot ids, and the two slot swaps the scanner makes:
// TryMergeSlot [KSM's try_to_merge_one_page + replace_page] and TryZeroSlot [the
// use_zero_pages path].
//
// Both swaps freeze the slot against writers by taking its stripe lock (the write protection
// of the kernel's version), re-check that the slot still holds the page the scanner looked at
// and that nobody else shares it meanwhile, and compare bytes under that lock. A writer either
// ran before (the slot id differs: abort) or waits for the stripe and then replaces whatever
// page the slot holds, as it always does: no write is ever lost, and a merge never publishes
// bytes the slot did not hold. A Mapping object the filesystem has closed or deleted since the
// scanner picked it up is left alone (IsCurrent).
using DedupFs.Store;

namespace DedupFs.Pages;

/// <summary>The outcome of one slot swap by the scanner.</summary>
internal enum SlotMergeResult
{
    /// <summary>The slot now points at the target (or is a hole for a zero merge).</summary>
    Merged,
    /// <summary>The slot no longer holds the page seen, or that page became shared: nothing changed.</summary>
    SlotChanged,
    /// <summary>The bytes differ (a hash collision, or not zeros): nothing changed.</summary>
    BytesDiffer,
}

public sealed partial class Mapping
{
    private bool? _mergeable;

    /// <summary>Whether the merge scanner may merge this mapping's pages (the user.dedupfs.merge xattr;
    /// default <see cref="PageEngineOptions.MergeableByDefault"/>). Clearing it does not unmerge.</summary>
    public bool Mergeable
    {
        get => _mergeable ?? _engine.Options.MergeableByDefault;
        set => _mergeable = value;
    }

    /// <summary>The merge domain (the owner's uid): with merge_across_owners = 0 pages merge only within a domain.</summary>
    public uint MergeDomain { get; set; }

    // Slot ids of [first, first + dest.Length) without the stripe locks: possibly stale by the
    // time the caller looks, which is all the scanner needs (every swap re-checks under the lock).
    internal void PeekSlots(long first, Span<uint> dest) => _slots.CopyIds(first, dest);

    /// <summary>Points slot <paramref name="idx"/> at <paramref name="target"/> if it still holds <paramref name="expected"/>,
    /// nobody else maps <paramref name="expected"/>, and the bytes are identical. The caller holds a reference on
    /// <paramref name="target"/>, which passes to the slot on success.</summary>
    internal SlotMergeResult TryMergeSlot(long idx, PageId expected, PageId target, Span<byte> a, Span<byte> b) =>
        TrySwapSlot(idx, expected, target, a, b);

    /// <summary>Makes slot <paramref name="idx"/> a hole if it still holds <paramref name="expected"/>, nobody else maps
    /// it, and its bytes are all zeros.</summary>
    internal SlotMergeResult TryZeroSlot(long idx, PageId expected, Span<byte> scratch) =>
        TrySwapSlot(idx, expected, PageId.None, scratch, default);

    // Both swaps (see the top of the file); a None target compares with zeros and makes a hole.
    private SlotMergeResult TrySwapSlot(long idx, PageId expected, PageId target, Span<byte> a, Span<byte> b)
    {
        using DedupFs.Store.Store.MutationScope gate = _engine.Store.EnterPageMutation();
        if (!IsCurrent()) return SlotMergeResult.SlotChanged;
        Lock stripe = StripeOf(idx);
        stripe.Enter();
        try
        {
            if (_slots.Get(idx) != expected || _engine.IsShared(expected)) return SlotMergeResult.SlotChanged;
            _engine.ReadForCompare(expected, a);
            if (target.IsNone)
            {
                if (!PageContent.IsZero(a)) return SlotMergeResult.BytesDiffer;
            }
            else
            {
                _engine.ReadForCompare(target, b);
                if (!a.SequenceEqual(b)) return SlotMergeResult.BytesDiffer;
            }
            _slots.Set(idx, target);
            _engine.ReleasePage(expected);
            if (!target.IsNone) Interlocked.Increment(ref _engine.Counters.PagesMerged);
            return SlotMergeResult.Merged;
        }
        catch (Exception e)
        {
            _engine.OnOperationFailed(e);
            throw;
        }
        finally
        {
            stripe.Exit();
        }
    }

    // Whether this object is still the engine's mapping of its inode with its slot table loaded.
    // The scanner holds Mapping objects across a batch, and the filesystem may close (FORGET) or
    // delete the inode meanwhile; a slot swap on a table the store has unloaded would move
    // refcounts for a change that is never written. Called under the gate, which
    // TryUnloadSlotTable takes exclusively, so a table found loaded stays loaded until the swap
    // has made it dirty (and so unloadable no more).
    private bool IsCurrent() =>
        ReferenceEquals(_engine.LoadedMapping(Inode), this) && _engine.Store.IsSlotTableLoaded(Inode);

    // Tests: store a page with exactly these bytes at idx, zeros included (the write paths turn
    // zeros into holes; a store written by another tool, or with zero detection off, may not).
    internal void StorePageVerbatim(long idx, ReadOnlySpan<byte> bytes)
    {
        Span<byte> scratch = stackalloc byte[PageSize];
        using DedupFs.Store.Store.MutationScope gate = _engine.Store.EnterPageMutation();
        Lock stripe = StripeOf(idx);
        lock (stripe)
        {
            PageId old = _slots.Get(idx);
            PageId now = _engine.InstallPage(bytes, PageContent.Hash(bytes), dedup: false, scratch);
            _slots.Set(idx, now);
            if (!old.IsNone) _engine.ReleasePage(old);
            _slots.ExtendLength((idx + 1) << PageShift);
        }
    }
}
