// fsck: proves the store's invariants from its files alone, and repairs what it can without
// losing data.
//
// The check, in order:
//   1. Open: format header and version, page-table chunks (a damaged chunk is noted and its
//      records rebuilt in step 5 rather than refusing the store).
//   2. Mappings: every "maps" and "maplen" record's checksum; every slot must name a page below
//      the high-water mark and lie within its mapping's length. From the slots, the rmap of
//      every page and so the refcount it should have.
//   3. Refcounts: stored refcount == |rmap| for every slot of pages.dat. (The rmap is derived
//      from the mappings, so this is the rmap check too.)
//   4. Pages: every live page is read and its CRC32C compared; its xxHash64 (the content index
//      key) recomputed and compared. A zero page that is stored is noted (harmless).
//   5. Free-slot accounting: pages.dat covers the high-water mark; slots with refcount 0 are
//      the free ones and nothing maps them.
//   6. Blob tables (inodes, dirents, xattrs, values): every record's checksum.
//
// --repair fixes, then commits once:
//   - a refcount that disagrees with the mappings is set to the mappings' count (0 frees the
//     slot) - unless some mapping record is unreadable, in which case refcounts are only
//     raised, never lowered, because the unreadable record may reference the page;
//   - a wrong content hash is recomputed from the bytes, when the CRC says the bytes are good;
//   - a damaged page-table chunk is rebuilt: refcounts from the mappings, checksum and hash
//     from the page bytes as they are.
// It cannot repair (and says so): damaged page bytes, damaged mapping or blob records, slots
// that point beyond the page file. Those are data already lost; fsck names what they hold.
using K4os.Hash.xxHash;

namespace DedupFs.Store;

/// <summary>What fsck found and did.</summary>
public sealed class FsckReport
{
    /// <summary>Every problem found (empty: the store is consistent).</summary>
    public List<string> Problems { get; } = [];

    /// <summary>What --repair fixed.</summary>
    public List<string> Repaired { get; } = [];

    /// <summary>Problems --repair could not fix without losing data.</summary>
    public List<string> Unrepairable { get; } = [];

    /// <summary>Live pages whose bytes were checked.</summary>
    public long PagesChecked { get; internal set; }

    /// <summary>Mappings examined.</summary>
    public long MappingsChecked { get; internal set; }

    /// <summary>True when nothing was wrong.</summary>
    public bool Clean => Problems.Count == 0;

    /// <summary>False when the store could not be opened at all (not a store, unknown version, in use).</summary>
    public bool Opened { get; internal set; } = true;

    /// <inheritdoc/>
    public override string ToString()
    {
        var sb = new System.Text.StringBuilder();
        sb.AppendLine($"fsck: {MappingsChecked} mappings, {PagesChecked} pages checked, {Problems.Count} problems");
        foreach (string p in Problems) sb.AppendLine("problem: " + p);
        foreach (string r in Repaired) sb.AppendLine("repaired: " + r);
        foreach (string u in Unrepairable) sb.AppendLine("not repaired: " + u);
        return sb.ToString();
    }
}

/// <summary>Store checker and repairer (`dedupfs fsck STORE [--repair]`). Run on a store no one has open.</summary>
public static class Fsck
{
    /// <summary>Checks the store in <paramref name="directory"/>; with <paramref name="repair"/>, fixes what it safely can.</summary>
    public static FsckReport Run(string directory, bool repair = false, Action<string>? log = null)
    {
        var report = new FsckReport();
        var openProblems = new List<string>();
        Store store;
        try
        {
            store = new Store(directory, new StoreOptions
            {
                Create = false, CommitInterval = null, CommitAfterPages = 0, Log = log ?? (_ => { }),
            }, openProblems);
        }
        catch (StoreException e)
        {
            report.Problems.Add(e.Message);
            report.Unrepairable.Add("the store cannot be opened: " + e.Message);
            report.Opened = false;
            return report;
        }
        using (store)
        {
            Check(store, openProblems, repair, report);
        }
        return report;
    }

    private static void Check(Store store, List<string> openProblems, bool repair, FsckReport report)
    {
        PageTable pages = store.PageTable;
        long highWater = pages.HighWater;
        var damagedChunks = new HashSet<long>();
        foreach (string p in openProblems)
        {
            report.Problems.Add(p);
            const string marker = "page table chunk ";
            int at = p.IndexOf(marker, StringComparison.Ordinal);
            if (at >= 0 && long.TryParse(p[(at + marker.Length)..].Split(' ')[0], out long chunk)) damagedChunks.Add(chunk);
            else report.Unrepairable.Add(p);
        }

        // 2. Mappings -> expected refcounts (the rmap, counted).
        var expected = new long[highWater];
        var firstUser = new Dictionary<long, (ulong, long)>();
        var lengths = new Dictionary<ulong, long>();
        bool mappingDamaged = false;
        store.ScanMapLengths((inode, len) =>
        {
            if (len < 0)
            {
                report.Problems.Add($"inode {inode}: mapping length record damaged");
                report.Unrepairable.Add($"inode {inode}: mapping length record damaged");
            }
            else lengths[inode] = len;
        });
        var inodes = new HashSet<ulong>(lengths.Keys);
        store.ScanMapRecords((inode, chunk, ids) =>
        {
            inodes.Add(inode);
            if (ids == null)
            {
                mappingDamaged = true;
                string msg = $"inode {inode}: mapping record for pages {chunk * StoreFormat.SlotsPerMapChunk}..{(chunk + 1) * StoreFormat.SlotsPerMapChunk - 1} damaged";
                report.Problems.Add(msg);
                report.Unrepairable.Add(msg + " (those pages of the file are lost)");
                return;
            }
            long pagesInLength = lengths.TryGetValue(inode, out long len) ? (len + Store.PageSize - 1) / Store.PageSize : long.MaxValue;
            for (int i = 0; i < ids.Length; i++)
            {
                if (ids[i] == 0) continue;
                long index = chunk * StoreFormat.SlotsPerMapChunk + i;
                var id = new PageId(ids[i]);
                if (id.Slot >= highWater)
                {
                    string msg = $"inode {inode} page {index}: points at {id}, beyond the high-water mark {highWater}";
                    report.Problems.Add(msg);
                    report.Unrepairable.Add(msg);
                    continue;
                }
                expected[id.Slot]++;
                firstUser.TryAdd(id.Slot, (inode, index));
                if (index >= pagesInLength) report.Problems.Add($"inode {inode} page {index}: slot beyond the mapping's length {len}");
            }
        });
        report.MappingsChecked = inodes.Count;

        // 5. Free-slot accounting: the page file must hold every allocated slot.
        long fileLength = store.PageFileLength;
        if (fileLength < highWater * Store.PageSize)
            report.Problems.Add($"{StoreFormat.PageFileName} is {fileLength} bytes; {highWater} slots need {highWater * Store.PageSize}");

        // 3 + 4. Refcounts and page bytes.
        var buf = new byte[Store.PageSize];
        bool changed = false;
        for (long slot = 0; slot < highWater; slot++)
        {
            ref PageRecord rec = ref pages[slot];
            var id = PageId.FromSlot(slot);
            long want = expected[slot];
            bool chunkDamaged = damagedChunks.Contains(slot / StoreFormat.PagesPerChunk);
            if (want == 0 && rec.RefCount == 0 && !chunkDamaged) continue;

            int n = want > 0 || rec.RefCount > 0 ? store.ReadSlotRaw(slot, buf) : 0;
            string users = firstUser.TryGetValue(slot, out var u) ? $" (mapped by inode {u.Item1} page {u.Item2}{(want > 1 ? $" and {want - 1} more" : "")})" : "";
            if (chunkDamaged)
            {
                if (repair && want > 0)
                {
                    rec.RefCount = (uint)want;
                    rec.Crc32C = Crc32C.Compute(buf);
                    rec.Hash = XXH64.DigestOf(buf);
                    pages.MarkDirty(slot);
                    changed = true;
                }
                else if (repair)
                {
                    rec = default;
                    pages.MarkDirty(slot);
                    changed = true;
                }
                continue;
            }
            if (rec.RefCount != want)
            {
                string msg = $"{id}: refcount {rec.RefCount}, but {want} mapping slots point at it{users}";
                report.Problems.Add(msg);
                if (repair && (want > rec.RefCount || !mappingDamaged))
                {
                    rec.RefCount = (uint)want;
                    pages.MarkDirty(slot);
                    changed = true;
                    report.Repaired.Add($"{id}: refcount set to {want}");
                }
                else if (repair) report.Unrepairable.Add(msg + " (not lowered: a damaged mapping record may reference it)");
            }
            if (want == 0) continue;
            report.PagesChecked++;
            if (n < Store.PageSize)
            {
                string msg = $"{id}: beyond the end of {StoreFormat.PageFileName}{users}";
                report.Problems.Add(msg);
                report.Unrepairable.Add(msg);
                continue;
            }
            uint crc = Crc32C.Compute(buf);
            if (crc != rec.Crc32C)
            {
                string msg = $"{id}: checksum mismatch (stored {rec.Crc32C:x8}, read {crc:x8}): page data damaged{users}";
                report.Problems.Add(msg);
                report.Unrepairable.Add(msg);
                continue;
            }
            ulong hash = XXH64.DigestOf(buf);
            if (hash != rec.Hash)
            {
                report.Problems.Add($"{id}: content index hash {rec.Hash:x16} does not match its bytes ({hash:x16})");
                if (repair)
                {
                    rec.Hash = hash;
                    pages.MarkDirty(slot);
                    changed = true;
                    report.Repaired.Add($"{id}: content hash recomputed");
                }
            }
        }
        if (repair && damagedChunks.Count > 0)
            foreach (long c in damagedChunks) report.Repaired.Add($"page table chunk {c}: rebuilt from the mappings and the page bytes");

        // 6. Blobs.
        store.ScanBlobs((table, key, ok) =>
        {
            if (ok) return;
            string msg = $"{table}/{Convert.ToHexString(key)}: record checksum mismatch";
            report.Problems.Add(msg);
            report.Unrepairable.Add(msg);
        });

        if (changed)
        {
            // Slots whose refcount became 0 are free once this commit is durable.
            pages.RebuildFreeList();
            store.Commit();
        }
    }
}
