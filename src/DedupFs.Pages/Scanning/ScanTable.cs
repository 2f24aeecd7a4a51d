// The scanner's memory of one mapping [the kernel's rmap_items of one mm, minus the tree links]:
// one 8-byte entry per tracked slot, in chunks of up to 512 entries (4 KiB) allocated on first
// use and grown by doubling, so a hole-only region costs nothing and a file costs about 8 bytes
// per page slot (8.0-8.1 measured by scripts/bench/scanner)
// (the kernel's rmap_item is 64 bytes; the unstable and stable indexes hold their own links).
//
// Entry layout (one ulong):
//   bits  0..31  page id seen at the last visit (0 = untracked)
//   bits 32..35  remaining_skips (smart scan, 0..8)
//   bits 36..39  age: visits since the content last changed, saturating at 15 (smart scan
//                only distinguishes < 3, <= 5, <= 8 and more)
//   bits 40..63  24 bits of the page's stored xxHash64: the "oldchecksum"
// ZeroMarker (page id 0 with every other bit set) marks a slot the scanner turned into a hole
// because its page was all zeros (use_zero_pages); it is the one entry a hole may carry.
//
// Why a page id *and* a checksum: DedupFs pages never change bytes (a write installs a new
// page), so a changed page id already says "written since the last visit". But a freed id
// can be reused for other bytes after a commit, and a write of the same bytes in between can
// bring an old id back; the checksum catches the first, and the second is harmless (the bytes
// are the ones seen before). The checksum only filters: a merge always compares bytes, so a
// false "unchanged" costs a wasted compare, never data.
//
// Thread safety: only the thread holding the scanner's scan lock reads or writes entries;
// the counters are read by statistics readers without it.
namespace DedupFs.Pages;

internal sealed class ScanTable(ulong inode, int number)
{
    public const int ChunkShift = 9;
    public const int ChunkSize = 1 << ChunkShift;
    public const int BytesPerEntry = sizeof(ulong);
    public const ulong ZeroMarker = 0xFFFF_FFFF_0000_0000UL;

    private ulong[]?[] _chunks = [];

    /// <summary>The inode whose mapping this table describes.</summary>
    public ulong Inode { get; } = inode;

    /// <summary>The table's number in the scanner's table list (the unstable index refers to slots by it).</summary>
    public int Number { get; } = number;

    /// <summary>The mapping's merge domain when the scanner last walked it (the unstable index's keys use it).</summary>
    public uint Domain;

    /// <summary>Tracked slots: entries for a page (ksm_rmap_items of this mapping).</summary>
    public long Tracked;

    /// <summary>Slots the scanner made holes because they were zeros and that are still holes.</summary>
    public long ZeroMerged;

    /// <summary>Bytes of entries and directory.</summary>
    public long MemoryBytes
    {
        get
        {
            long n = (long)_chunks.Length * IntPtr.Size;
            foreach (ulong[]? c in _chunks) if (c != null) n += (long)c.Length * BytesPerEntry;
            return n;
        }
    }

    /// <summary>One past the highest index given an entry since the last <see cref="TrimExtent"/>.</summary>
    public long Extent { get; private set; }

    /// <summary>Lowers <see cref="Extent"/> to one past the last non-zero entry (after a truncation was walked).</summary>
    public void TrimExtent()
    {
        long i = Extent - 1;
        while (i >= 0 && Get(i) == 0) i--;
        Extent = i + 1;
    }

    /// <summary>The entry of <paramref name="index"/>, 0 if none.</summary>
    public ulong Get(long index)
    {
        long c = index >> ChunkShift;
        if (c >= _chunks.Length) return 0;
        ulong[]? chunk = _chunks[c];
        int offset = (int)(index & (ChunkSize - 1));
        return chunk == null || offset >= chunk.Length ? 0 : chunk[offset];
    }

    /// <summary>A reference to the entry of <paramref name="index"/>, creating or growing its chunk. The reference
    /// is good until the next At of a higher index in the same chunk (which may grow it).</summary>
    public ref ulong At(long index)
    {
        long c = index >> ChunkShift;
        if (c >= _chunks.Length)
        {
            long size = Math.Max(c + 1, _chunks.Length * 2L);
            Array.Resize(ref _chunks, (int)size);
        }
        if (index >= Extent) Extent = index + 1;
        int offset = (int)(index & (ChunkSize - 1));
        ulong[]? chunk = _chunks[c];
        if (chunk == null || offset >= chunk.Length)
        {
            // Chunks start at 16 entries and double, as the slot table's do: a 10-page file costs
            // 128 bytes here, not 4 KiB.
            int size = Math.Max(16, chunk?.Length ?? 0);
            while (size <= offset) size *= 2;
            Array.Resize(ref chunk, Math.Min(size, ChunkSize));
            _chunks[c] = chunk;
        }
        return ref chunk[offset];
    }

    public static uint PageOf(ulong e) => (uint)e;
    public static uint ChecksumOf(ulong hash) => (uint)(hash >> 40);
    public static uint StoredChecksum(ulong e) => (uint)(e >> 40);
    public static int AgeOf(ulong e) => (int)(e >> 36) & 0xF;
    public static int SkipsOf(ulong e) => (int)(e >> 32) & 0xF;

    public static ulong Make(uint page, uint checksum, int age, int skips) =>
        page | ((ulong)(skips & 0xF) << 32) | ((ulong)(age & 0xF) << 36) | ((ulong)checksum << 40);
}
