// A mapping [address_space]: one per regular file, page index -> content page or hole, plus
// the file's length. Bytes beyond the length are always zero inside the last page and every
// slot beyond it is a hole, so extending a file (truncate up, write past the end) exposes
// zeros with no further work.
//
// Locking. Slots are guarded by 64 stripe locks: page index i belongs to stripe (i / 16) % 64,
// so a 128 KiB FUSE write touches at most three stripes, and writers to different regions
// of one file do not serialise on one lock. The locks come from the engine's pool of 256
// groups of 64, a group chosen by the inode number, so a mapping costs no lock objects of its
// own (a million small files would otherwise carry 2.5 KiB of locks each); two mappings of
// one group may wait for each other briefly. An operation takes the stripes of its range in
// ascending order within its group and never holds two groups at once, so lock cycles
// cannot form.
// Reads take one stripe per page while they copy it, which also pins the page: it cannot be
// freed while a slot we hold points at it. Every mutation first enters the Store's page gate
// (shared) so a commit's snapshot sees whole operations only; a commit holds that gate only
// while it copies its snapshot, so writes go on during its fdatasync and LMDB transaction.
//
// The operations live in partial files: Mapping.Read.cs, Mapping.Write.cs (write, truncate,
// punch), Mapping.Share.cs (clone, merge, unmerge).
using System.Runtime.CompilerServices;
using DedupFs.Store;

namespace DedupFs.Pages;

/// <summary>The page table of one regular file. Thread-safe.</summary>
public sealed partial class Mapping
{
    private const int PageShift = 12;
    private const int PageSize = PageContent.Size;
    internal const int StripeCount = 64;
    private const int StripeShift = 4;   // 16 pages (64 KiB) per stripe run

    private readonly PageEngine _engine;
    private readonly SlotTable _slots;
    private readonly Lock[] _locks;   // the engine's pool; ours are [_base, _base + 64)
    private readonly int _base;

    internal Mapping(PageEngine engine, SlotTable slots)
    {
        _engine = engine;
        _slots = slots;
        _locks = engine.StripeLocks;
        _base = (int)((slots.Inode * 0x9E3779B97F4A7C15UL) >> 56) * StripeCount;
    }

    /// <summary>The inode this mapping belongs to.</summary>
    public ulong Inode => _slots.Inode;

    /// <summary>Length in bytes.</summary>
    public long Length => _slots.Length;

    /// <summary>Decides what happens when a shared slot is about to change; null = copy-on-write.</summary>
    public BreakSharePolicy? Policy { get; set; }

    /// <summary>The errno an operation refused by <see cref="Policy"/> fails with (default EPERM).</summary>
    public int RefusedErrno { get; set; } = 1;

    /// <summary>Raised after a shared slot of this mapping changed (under the stripe lock: do not call back in).</summary>
    public event BreakShareObserver? SharedPageBroken;

    /// <summary>The page at <paramref name="index"/> (None for a hole).</summary>
    public PageId PageAt(long index)
    {
        Lock stripe = StripeOf(index);
        lock (stripe) return _slots.Get(index);
    }

    /// <summary>Number of page slots that may be in use (an upper bound: last used index + 1).</summary>
    public long PageCount => _slots.LastUsedIndex() + 1;

    private Lock StripeOf(long index) => _locks[_base + (int)((index >> StripeShift) & (StripeCount - 1))];

    // Takes the stripes covering page indexes [first, last] in ascending order; returns the set.
    private ulong LockRange(long first, long last)
    {
        ulong mask = 0;
        if (last < first) return 0;
        if ((last >> StripeShift) - (first >> StripeShift) >= StripeCount - 1) mask = ulong.MaxValue;
        else
            for (long s = first >> StripeShift; s <= last >> StripeShift; s++) mask |= 1UL << (int)(s & (StripeCount - 1));
        for (ulong m = mask; m != 0; m &= m - 1) _locks[_base + System.Numerics.BitOperations.TrailingZeroCount(m)].Enter();
        return mask;
    }

    private void Unlock(ulong mask)
    {
        for (ulong m = mask; m != 0; m &= m - 1) _locks[_base + System.Numerics.BitOperations.TrailingZeroCount(m)].Exit();
    }

    // The first half of the callback: ask the policy about every shared slot in [first, last]
    // before anything changes, so a refusal or a redirect leaves the mapping untouched.
    private void AskPolicy(long first, long last, BreakShareReason reason)
    {
        BreakSharePolicy? policy = Policy;
        if (policy == null) return;
        for (long idx = first; idx <= last; idx++)
        {
            PageId old = _slots.Get(idx);
            if (!_engine.IsShared(old)) continue;
            var e = new BreakShareEvent(this, idx, old, PageId.None, reason);
            BreakShareDecision d = policy(in e);
            if (d.Action == BreakShareAction.Refuse) ThrowRefused(e);
            if (d.Action == BreakShareAction.Redirect) ThrowRedirected(e, d.Target);
        }
    }

    // The second half: after a shared slot changed, count it and tell the observers.
    private void NoteBroken(long idx, PageId shared, PageId now, BreakShareReason reason)
    {
        if (!now.IsNone) Interlocked.Increment(ref _engine.Counters.CowKsm);
        var e = new BreakShareEvent(this, idx, shared, now, reason);
        SharedPageBroken?.Invoke(in e);
        _engine.RaiseBroken(in e);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowRefused(BreakShareEvent e) => throw new BreakShareRefusedException(e, RefusedErrno);

    // A redirect to this mapping would send the caller round in a circle, and one to another
    // engine's mapping would mix two stores' page ids: both are policy bugs, refused as such.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowRedirected(BreakShareEvent e, Mapping? target)
    {
        if (target == null || target == this || target._engine != _engine)
            throw new ArgumentException($"{this}: a break-share redirect must name another mapping of the same engine, not {target?.ToString() ?? "null"}");
        throw new BreakShareRedirectedException(e, RefusedErrno, target);
    }

    /// <inheritdoc/>
    public override string ToString() => $"mapping of inode {Inode} ({Length} bytes)";
}
