// An in-memory consistency check of the live engine, for tests and for `dedupfs stats
// --verify`: invariants 3 and 4 of DESIGN.md recomputed from scratch and compared with what
// the engine maintains incrementally.
//   - refcount(page) == |{(m, i) : m[i] == page}| for every slot of pages.dat
//   - every live page is in the content index under its stored hash, which matches its bytes
//   - no slot of a mapping lies beyond its length
//   - pages_shared / pages_sharing / unique pages equal their definitions
// Returns the problems found; empty means consistent. Run it while the engine is idle.
using DedupFs.Store;

namespace DedupFs.Pages;

public sealed partial class PageEngine
{
    /// <summary>Recomputes the invariants; returns a description of each violation.</summary>
    public List<string> Verify(bool checkBytes = true)
    {
        var problems = new List<string>();
        var refs = new Dictionary<uint, long>();
        foreach (ulong inode in _store.MappingInodes())
        {
            Mapping m = OpenMapping(inode);
            long pagesInLength = (m.Length + PageContent.Size - 1) >> 12;
            _store.OpenSlotTable(inode).ForEachPage((idx, id) =>
            {
                refs[id.Value] = refs.GetValueOrDefault(id.Value) + 1;
                if (idx >= pagesInLength) problems.Add($"inode {inode}: slot {idx} maps {id} beyond length {m.Length}");
            });
        }
        long shared = 0, sharing = 0, unique = 0;
        var buf = new byte[PageContent.Size];
        for (long s = 0; s < _store.HighWater; s++)
        {
            PageId id = PageId.FromSlot(s);
            uint rc = _store.RefCount(id);
            long expect = refs.GetValueOrDefault(id.Value);
            if (rc != expect) problems.Add($"{id}: refcount {rc} but {expect} slots map it");
            if (rc == 0) continue;
            unique++;
            if (rc >= 2) { shared++; sharing += rc - 1; }
            ulong hash = _store.GetRecord(id).Hash;
            if (!_index.Contains(id, hash)) problems.Add($"{id}: live but not in the content index");
            if (!checkBytes) continue;
            _store.ReadPage(id, buf);
            if (PageContent.Hash(buf) != hash) problems.Add($"{id}: stored hash does not match its bytes");
            if (PageContent.IsZero(buf)) problems.Add($"{id}: the zero page is stored");
            if (Cache.Contains(id))
            {
                var cached = new byte[PageContent.Size];
                if (Cache.TryRead(id, cached) && !cached.AsSpan().SequenceEqual(buf)) problems.Add($"{id}: cached bytes differ from disk");
            }
        }
        if (_index.Count != unique) problems.Add($"content index holds {_index.Count} pages, {unique} are live");
        KsmStatistics st = Statistics;
        if (st.PagesShared != shared) problems.Add($"pages_shared {st.PagesShared}, recomputed {shared}");
        if (st.PagesSharing != sharing) problems.Add($"pages_sharing {st.PagesSharing}, recomputed {sharing}");
        if (st.UniquePages != unique) problems.Add($"unique pages {st.UniquePages}, recomputed {unique}");
        return problems;
    }
}
