// The unstable index [KSM's unstable tree]: pages that were unchanged across two visits and
// found no stable twin, keyed by content hash (mixed with the merge domain when domains do not
// merge), pointing at the slot that holds them. A second slot with the same key is a merge
// candidate; a byte compare decides.
//
// Like the kernel's unstable tree it is never kept exact: an entry may point at a slot that
// was written since. The kernel tolerates a tree whose pages change under it because any
// merge re-compares after write protection; we tolerate stale entries for the same reason
// (the merge re-checks the slot under its stripe lock and compares bytes), and we empty the
// index at the start of every full scan so stale entries live at most one pass.
//
// Memory, which is the point of the layout: the kernel threads its tree through the 64-byte
// rmap_item; we keep only the slot's location, one ulong (table number: 24 bits, slot index:
// 40 bits), in an open-addressing table with linear probing, plus a 16-bit tag of the key in a
// parallel array. The key itself is not stored: it is recomputed from the location (the scan
// table's entry gives the page id, the page record its hash, the table its domain), the way the
// content index reads hashes back from page records. At load 0.35-0.7 that is 14-29 bytes per
// entry, ~20 typical; a Dictionary<ulong, ulong> was 32 (scripts/bench/scanner). The tag is
// what keeps it fast: recomputing a key costs four dependent reads, and without the tag every
// probe past another key paid them: a pass over 64 Ki idle pages ran at 0.38 M pages/s; with
// the tag, 1.7 M before the benchmark warmed the JIT up, 2.7-5 M after.
//
// An entry whose location no longer yields a key (its table was dropped, its slot untracked)
// is dead weight until the next Clear or rebuild, which drops it.
namespace DedupFs.Pages;

internal sealed class UnstableIndex(UnstableIndex.KeyOfLocation keyOf)
{
    /// <summary>The current key of the slot at <paramref name="loc"/>; false if the slot is no longer tracked.</summary>
    public delegate bool KeyOfLocation(ulong loc, out ulong key);

    private const ulong Empty = 0, Tombstone = ulong.MaxValue;
    private const int MinSize = 1024;
    private ulong[] _slots = new ulong[MinSize];   // location + 1, Empty or Tombstone
    private ushort[] _tags = new ushort[MinSize];  // Tag(key) of each live slot
    private int _live, _tombstones;

    /// <summary>Entries (pages_unshared). Read by statistics readers without the scan lock.</summary>
    public int Count => Volatile.Read(ref _live);

    public static ulong Location(int table, long index) => ((ulong)(uint)table << 40) | (ulong)index;
    public static int TableOf(ulong loc) => (int)(loc >> 40);
    public static long IndexOf(ulong loc) => (long)(loc & ((1UL << 40) - 1));

    /// <summary>The location filed under <paramref name="key"/>, if any.</summary>
    public bool TryGet(ulong key, out ulong loc)
    {
        int at = Find(key);
        loc = at < 0 ? 0 : _slots[at] - 1;
        return at >= 0;
    }

    /// <summary>Files <paramref name="loc"/> under <paramref name="key"/>, replacing the location filed there.</summary>
    public void Set(ulong key, ulong loc)
    {
        int at = Find(key);
        if (at >= 0)
        {
            _slots[at] = loc + 1;
            return;
        }
        if ((_live + _tombstones + 1) * 10 > _slots.Length * 7) Rebuild(_live + 1);
        Place(_slots, _tags, key, loc + 1);
        Volatile.Write(ref _live, _live + 1);
    }

    /// <summary>Removes the entry filed under <paramref name="key"/>.</summary>
    public void Remove(ulong key)
    {
        int at = Find(key);
        if (at < 0) return;
        _slots[at] = Tombstone;
        _tombstones++;
        Volatile.Write(ref _live, _live - 1);
    }

    /// <summary>Empties the index (start of a full scan); the table keeps its size, or halves if mostly unused.</summary>
    public void Clear()
    {
        int size = _slots.Length;
        while (size > MinSize && _live * 4 < size) size /= 2;
        if (size != _slots.Length)
        {
            _slots = new ulong[size];
            _tags = new ushort[size];
        }
        else Array.Clear(_slots);
        _tombstones = 0;
        Volatile.Write(ref _live, 0);
    }

    /// <summary>Bytes of the table.</summary>
    public long MemoryBytes => (long)_slots.Length * (sizeof(ulong) + sizeof(ushort));

    private static ushort Tag(ulong key) => (ushort)(key >> 48);

    private int Find(ulong key)
    {
        ulong[] slots = _slots;
        ushort[] tags = _tags;
        ushort tag = Tag(key);
        int mask = slots.Length - 1;
        for (int i = (int)(key & (ulong)mask), n = 0; n < slots.Length; i = (i + 1) & mask, n++)
        {
            ulong v = slots[i];
            if (v == Empty) return -1;
            if (v != Tombstone && tags[i] == tag && keyOf(v - 1, out ulong k) && k == key) return i;
        }
        return -1;
    }

    private static void Place(ulong[] slots, ushort[] tags, ulong key, ulong value)
    {
        int mask = slots.Length - 1;
        int i = (int)(key & (ulong)mask);
        while (slots[i] != Empty && slots[i] != Tombstone) i = (i + 1) & mask;
        slots[i] = value;
        tags[i] = Tag(key);
    }

    private void Rebuild(int need)
    {
        int size = _slots.Length;
        while (need * 2 > size) size *= 2;   // to load <= 0.5
        var fresh = new ulong[size];
        var freshTags = new ushort[size];
        int live = 0;
        foreach (ulong v in _slots)
        {
            if (v == Empty || v == Tombstone || !keyOf(v - 1, out ulong k)) continue;
            Place(fresh, freshTags, k, v);
            live++;
        }
        _slots = fresh;
        _tags = freshTags;
        _tombstones = 0;
        Volatile.Write(ref _live, live);
    }
}
