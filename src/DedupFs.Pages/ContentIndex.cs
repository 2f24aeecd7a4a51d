// The content index [KSM's stable tree]: xxHash64 -> the pages with that hash.
//
// KSM keeps its stable tree as an rbtree ordered by memcmp; DedupFs follows KSM.md's
// suggestion for a daemon instead: a hash table nominates candidates and a byte compare
// decides. Several pages may share a hash (a collision, or two identical pages that were not
// merged yet); lookups return them all and the caller compares each.
//
// Memory is the point of this design. Each entry is only the 4-byte PageId: the hash itself
// is read back from the page's PageRecord in the Store's page table, which exists anyway.
// Open addressing with linear probing at load factor <= 0.7 gives 4 / 0.5..0.7 = 6-8 bytes
// per unique page, so with the 16-byte PageRecord the daemon keeps about 24 bytes per unique
// page beside the page cache (ZFS's dedup table: about 320).
//
// Concurrency: 64 stripes chosen by the hash's top bits, each its own table and lock, so
// writers of different content rarely meet. Removal leaves a tombstone (uint.MaxValue) so a
// probe sequence is never cut short; a table is rebuilt when live + tombstones pass 0.7.
//
// A page is in the index from its creation until its refcount reaches 0; pages never change
// bytes, so an indexed page never changes bytes (invariant 3).
//
// Batched probes. A probe costs two cache misses (the table slot, then the candidate's
// PageRecord for its hash), ~16% of duplicate-ingest CPU when taken one page at a time. The
// write path therefore hashes a whole batch first, calling PrefetchProbe for each page, then
// PrefetchCandidate, and only then probes under the locks: 32 pages' misses overlap instead
// of being paid one after another (KSM has no such trick; its tree walk is a chain of misses).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using DedupFs.Store;

namespace DedupFs.Pages;

internal sealed class ContentIndex
{
    private const int StripeBits = 6;
    private const uint Empty = 0, Tombstone = uint.MaxValue;

    private sealed class Stripe
    {
        public readonly Lock Lock = new();
        public uint[] Slots = new uint[64];
        public int Live, Tombstones;
    }

    private readonly Stripe[] _stripes = new Stripe[1 << StripeBits];
    private readonly PageTableView _records;

    /// <summary>Reads a page's stored hash (the PageRecord in the Store's page table).</summary>
    public delegate ulong PageTableView(uint pageId);

    public ContentIndex(PageTableView records)
    {
        _records = records;
        for (int i = 0; i < _stripes.Length; i++) _stripes[i] = new Stripe();
    }

    /// <summary>Number of indexed pages.</summary>
    public long Count
    {
        get
        {
            long n = 0;
            foreach (Stripe s in _stripes) n += Volatile.Read(ref s.Live);
            return n;
        }
    }

    /// <summary>Bytes of memory the index uses.</summary>
    public long MemoryBytes
    {
        get
        {
            long n = 0;
            foreach (Stripe s in _stripes) n += (long)s.Slots.Length * sizeof(uint);
            return n;
        }
    }

    /// <summary>Adds <paramref name="page"/> whose stored hash is <paramref name="hash"/>.</summary>
    public void Insert(PageId page, ulong hash)
    {
        Stripe s = StripeOf(hash);
        lock (s.Lock)
        {
            if ((s.Live + s.Tombstones + 1) * 10 > s.Slots.Length * 7) Rebuild(s, s.Live + 1);
            InsertNoGrow(s.Slots, page.Value, hash);
            s.Live++;
        }
    }

    /// <summary>Removes <paramref name="page"/>; returns whether it was present.</summary>
    public bool Remove(PageId page, ulong hash)
    {
        Stripe s = StripeOf(hash);
        lock (s.Lock)
        {
            int at = ProbeFor(s.Slots, page.Value, hash);
            if (at < 0) return false;
            s.Slots[at] = Tombstone;
            s.Live--;
            s.Tombstones++;
            return true;
        }
    }

    /// <summary>The slot holding <paramref name="page"/> along <paramref name="hash"/>'s probe sequence, or -1.
    /// Linear probing stops at the first empty slot: tombstones keep later entries reachable.</summary>
    private static int ProbeFor(uint[] slots, uint page, ulong hash)
    {
        int mask = slots.Length - 1;
        for (int i = (int)(hash & (ulong)mask), n = 0; n < slots.Length; i = (i + 1) & mask, n++)
        {
            uint v = slots[i];
            if (v == Empty) return -1;
            if (v == page) return i;
        }
        return -1;
    }

    /// <summary>Copies up to <paramref name="dest"/>.Length pages whose hash equals <paramref name="hash"/>
    /// into <paramref name="dest"/>; returns how many. Candidates only: compare bytes before sharing.</summary>
    public int FindCandidates(ulong hash, Span<uint> dest)
    {
        Stripe s = StripeOf(hash);
        int found = 0;
        lock (s.Lock)
        {
            uint[] slots = s.Slots;
            int mask = slots.Length - 1;
            for (int i = (int)(hash & (ulong)mask), n = 0; n < slots.Length && found < dest.Length; i = (i + 1) & mask, n++)
            {
                uint v = slots[i];
                if (v == Empty) break;
                if (v != Tombstone && _records(v) == hash) dest[found++] = v;
            }
        }
        return found;
    }

    /// <summary>Hint: starts loading the table line where <paramref name="hash"/>'s probe begins.
    /// Reads the table unlocked; a stale table only makes the hint useless, never wrong.</summary>
    public unsafe void PrefetchProbe(ulong hash)
    {
        if (!Sse.IsSupported) return;
        uint[] slots = Volatile.Read(ref StripeOf(hash).Slots);
        Sse.Prefetch0(Unsafe.AsPointer(ref slots[(int)(hash & (ulong)(slots.Length - 1))]));
    }

    /// <summary>Hint: the first page on <paramref name="hash"/>'s probe sequence (unlocked, may be stale; 0 if
    /// none), for prefetching its record. Never a candidate by itself: <see cref="FindCandidates"/> decides.</summary>
    public uint PeekFirst(ulong hash)
    {
        uint[] slots = Volatile.Read(ref StripeOf(hash).Slots);
        uint v = Volatile.Read(ref slots[(int)(hash & (ulong)(slots.Length - 1))]);
        return v == Tombstone ? Empty : v;
    }

    /// <summary>Whether <paramref name="page"/> is indexed under <paramref name="hash"/>.</summary>
    public bool Contains(PageId page, ulong hash)
    {
        Stripe s = StripeOf(hash);
        lock (s.Lock)
        {
            return ProbeFor(s.Slots, page.Value, hash) >= 0;
        }
    }

    /// <summary>Where <paramref name="id"/> appears (stripe, position): diagnostics for tests.</summary>
    internal List<(int Stripe, int Position)> Locate(uint id)
    {
        var found = new List<(int, int)>();
        for (int si = 0; si < _stripes.Length; si++)
            lock (_stripes[si].Lock)
                for (int i = 0; i < _stripes[si].Slots.Length; i++)
                    if (_stripes[si].Slots[i] == id) found.Add((si, i));
        return found;
    }

    internal int StripeIndexOf(ulong hash) => (int)(hash >> (64 - StripeBits));

    private Stripe StripeOf(ulong hash) => _stripes[(int)(hash >> (64 - StripeBits))];

    private void InsertNoGrow(uint[] slots, uint id, ulong hash)
    {
        int mask = slots.Length - 1;
        int i = (int)(hash & (ulong)mask);
        while (slots[i] != Empty && slots[i] != Tombstone) i = (i + 1) & mask;
        slots[i] = id;
    }

    private void Rebuild(Stripe s, int need)
    {
        int size = s.Slots.Length;
        while (need * 2 > size) size *= 2;          // rebuild to load <= 0.5
        while (size > 64 && need * 4 < size) size /= 2;
        var fresh = new uint[size];
        foreach (uint v in s.Slots)
            if (v != Empty && v != Tombstone) InsertNoGrow(fresh, v, _records(v));
        s.Slots = fresh;
        s.Tombstones = 0;
    }
}
