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
// Memory: a location is one ulong (table number: 24 bits, slot index: 40 bits), so an entry
// is a Dictionary<ulong, ulong> entry, ~28 bytes, for pages that are candidates this pass only.
// The page id is not stored: it is the table entry's, which a pass does not change once the
// slot is indexed.
namespace DedupFs.Pages;

internal sealed class UnstableIndex
{
    private readonly Dictionary<ulong, ulong> _entries = new();

    /// <summary>Entries (pages_unshared).</summary>
    public int Count => _entries.Count;

    public static ulong Location(int table, long index) => ((ulong)(uint)table << 40) | (ulong)index;
    public static int TableOf(ulong loc) => (int)(loc >> 40);
    public static long IndexOf(ulong loc) => (long)(loc & ((1UL << 40) - 1));

    public bool TryGet(ulong key, out ulong loc) => _entries.TryGetValue(key, out loc);
    public void Set(ulong key, ulong loc) => _entries[key] = loc;
    public void Remove(ulong key) => _entries.Remove(key);
    public void Clear() => _entries.Clear();

    /// <summary>Approximate bytes: Dictionary entries of 24 bytes plus 4-byte buckets.</summary>
    public long MemoryBytes => (long)_entries.EnsureCapacity(0) * 28;
}
