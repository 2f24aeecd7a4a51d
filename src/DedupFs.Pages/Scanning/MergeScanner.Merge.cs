// One visit of one slot: the volatility filter, smart scan, and the merge steps (see the top of
// MergeScanner.cs). Everything here runs under _scanLock.
using DedupFs.Store;

namespace DedupFs.Pages;

public sealed partial class MergeScanner
{
    private const int MaxDups = 64;

    // Visits slot idx of m, which held `id` a moment ago. Returns 1 if the visit counts toward
    // pages_to_scan (a page was looked at), 0 for holes and smart-scan skips.
    private int ScanSlot(Mapping m, ScanTable table, long idx, uint id)
    {
        if (id == 0)
        {
            ulong old = table.Get(idx);
            if (old == ScanTable.ZeroMarker)
            {
                if (idx < (m.Length + PageContent.Size - 1) >> 12) return 0;   // still a zero-page mapping
                table.At(idx) = 0;   // truncated away: the zero-page mapping is gone
                table.ZeroMerged--;
                Interlocked.Decrement(ref _ksmZeroPages);
            }
            else if (old != 0)
            {
                table.At(idx) = 0;   // the page went (truncate, punch): no longer tracked
                table.Tracked--;
                Interlocked.Decrement(ref _rmapItems);
            }
            return 0;
        }
        var page = new PageId(id);
        PageRecord rec = _store.GetRecord(page);
        if (rec.RefCount == 0) return 0;   // freed since we peeked: the slot changed, see it next pass
        ref ulong e = ref table.At(idx);
        if (e == ScanTable.ZeroMarker)
        {
            // A slot we made a hole was written since: that zero-page mapping is gone.
            e = 0;
            table.ZeroMerged--;
            Interlocked.Decrement(ref _ksmZeroPages);
        }
        if (e == 0)
        {
            table.Tracked++;
            Interlocked.Increment(ref _rmapItems);
        }
        uint sum = ScanTable.ChecksumOf(rec.Hash);
        if (rec.RefCount >= 2)
        {
            // Step 1: already shared, hence stable. Pages the scanner merged are in its stable index;
            // pages shared by clones or inline dedup are found through the content index when needed,
            // so walking a heavily reflinked store costs no memory per shared page.
            e = ScanTable.Make(id, sum, 0, 0);
            Interlocked.Increment(ref _pagesScanned);
            return 1;
        }
        if (ScanTable.PageOf(e) != id || ScanTable.StoredChecksum(e) != sum)
        {
            // Step 2: first visit, or written since the last one: volatile until it holds still.
            e = ScanTable.Make(id, sum, 0, 0);
            Interlocked.Increment(ref _pagesScanned);
            return 1;
        }
        int age = ScanTable.AgeOf(e), skips = ScanTable.SkipsOf(e);
        if (SmartScan && age >= 3)
        {
            if (skips > 0)
            {
                e = ScanTable.Make(id, sum, Math.Min(age + 1, 15), skips - 1);
                Interlocked.Increment(ref _pagesSkipped);
                return 0;
            }
            skips = SkipAge(age);
        }
        e = ScanTable.Make(id, sum, Math.Min(age + 1, 15), skips);
        Interlocked.Increment(ref _pagesScanned);
        CmpAndMergePage(m, table, idx, page, rec.Hash);
        return 1;
    }

    // How many passes an unmerged page of this age sits out before its next look (kernel's skip_age).
    private static int SkipAge(int age) => age <= 3 ? 1 : age <= 5 ? 2 : age <= 8 ? 4 : 8;

    // The index key: the content hash, mixed with the domain when domains do not merge.
    private ulong KeyOf(ulong hash, Mapping m) =>
        MergeAcrossOwners ? hash : hash ^ ((m.MergeDomain + 1UL) * 0x9E3779B97F4A7C15UL);

    // The unstable index's key for a location: recomputed from the slot's scan-table entry.
    private bool KeyOfLocation(ulong loc, out ulong key)
    {
        key = 0;
        int number = UnstableIndex.TableOf(loc);
        ScanTable? t = number < _tables.Count ? _tables[number] : null;
        if (t == null) return false;
        uint page = ScanTable.PageOf(t.Get(UnstableIndex.IndexOf(loc)));
        if (page == 0) return false;
        ulong hash = _store.GetRecord(new PageId(page)).Hash;
        key = MergeAcrossOwners ? hash : hash ^ ((t.Domain + 1UL) * 0x9E3779B97F4A7C15UL);
        return true;
    }

    private bool SameDomain(Mapping a, Mapping b) => MergeAcrossOwners || a.MergeDomain == b.MergeDomain;

    // Steps 3-5 for a page that held still since the last visit.
    private void CmpAndMergePage(Mapping m, ScanTable table, long idx, PageId page, ulong hash)
    {
        if (UseZeroPages && hash == ZeroHash)
        {
            if (m.TryZeroSlot(idx, page, _a) == SlotMergeResult.Merged)
            {
                table.At(idx) = ScanTable.ZeroMarker;
                table.Tracked--;
                Interlocked.Decrement(ref _rmapItems);
                table.ZeroMerged++;
                Interlocked.Increment(ref _ksmZeroPages);
            }
            return;
        }
        ulong key = KeyOf(hash, m);
        SlotMergeResult r = StableTreeSearch(m, idx, page, key, hash, out PageId target);
        if (r == SlotMergeResult.Merged)
        {
            table.At(idx) = ScanTable.Make(target.Value, ScanTable.ChecksumOf(hash), 0, 0);
            return;
        }
        if (r == SlotMergeResult.SlotChanged) return;
        UnstableTreeSearchInsert(m, table, idx, page, key, hash);
    }

    // Step 4: merge into the first stable dup with these bytes and room for one more mapper.
    // Returns Merged (target set), SlotChanged (stop: the slot moved on), or BytesDiffer (no dup took it).
    private SlotMergeResult StableTreeSearch(Mapping m, long idx, PageId page, ulong key, ulong hash, out PageId target)
    {
        target = PageId.None;
        // Dead dups are left for the pruner; full ones make the page wait to pair up anew.
        Span<uint> dups = stackalloc uint[MaxDups];
        int max = MaxPageSharing;
        int n = _stable.DupsWithRoom(key, hash, (uint)max, dups);
        for (int i = 0; i < n; i++)
        {
            var dup = new PageId(dups[i]);
            if (dup == page) continue;
            SlotMergeResult r = TryMergeOnePage(m, idx, page, dup);
            if (r == SlotMergeResult.Merged)
            {
                target = dup;
                return r;
            }
            if (r == SlotMergeResult.SlotChanged) return r;
        }
        if (!MergeAcrossOwners) return SlotMergeResult.BytesDiffer;   // a shared page's domain is known only for our own
        // Pages shared by other means (clone, inline dedup) with these bytes: the content index's candidates.
        Span<uint> candidates = stackalloc uint[8];
        int c = _engine.Index.FindCandidates(hash, candidates);
        for (int i = 0; i < c; i++)
        {
            var cand = new PageId(candidates[i]);
            if (cand == page || _stable.Contains(key, cand.Value)) continue;
            PageRecord rec = _store.GetRecord(cand);
            if (rec.RefCount < 2 || rec.RefCount >= max || rec.Hash != hash) continue;
            SlotMergeResult r = TryMergeOnePage(m, idx, page, cand);
            if (r == SlotMergeResult.Merged)
            {
                _stable.Add(key, hash, cand.Value);   // a merge target of ours from now on
                target = cand;
                return r;
            }
            if (r == SlotMergeResult.SlotChanged) return r;
        }
        return SlotMergeResult.BytesDiffer;
    }

    // Step 5: pair with the candidate of this key if it is still there and identical; else become the candidate.
    private void UnstableTreeSearchInsert(Mapping m, ScanTable table, long idx, PageId page, ulong key, ulong hash)
    {
        ulong here = UnstableIndex.Location(table.Number, idx);
        if (_unstable.TryGet(key, out ulong loc) && loc != here)
        {
            ScanTable? other = _tables[UnstableIndex.TableOf(loc)];
            long otherIdx = UnstableIndex.IndexOf(loc);
            var candidate = new PageId(other == null ? 0 : ScanTable.PageOf(other.Get(otherIdx)));
            PageRecord rec = candidate.IsNone ? default : _store.GetRecord(candidate);
            // The candidate may have been cloned since it was filed: it too takes max_page_sharing mappers at most.
            if (!candidate.IsNone && candidate != page && rec.Hash == hash && rec.RefCount < MaxPageSharing
                && _engine.LoadedMapping(other!.Inode) is { Mergeable: true } om && SameDomain(m, om) && PeekOne(om, otherIdx) == candidate)
            {
                SlotMergeResult r = TryMergeOnePage(m, idx, page, candidate);
                if (r == SlotMergeResult.Merged)
                {
                    _unstable.Remove(key);
                    _stable.Add(key, hash, candidate.Value);
                    uint sum = ScanTable.ChecksumOf(hash);
                    table.At(idx) = ScanTable.Make(candidate.Value, sum, 0, 0);
                    other.At(otherIdx) = ScanTable.Make(candidate.Value, sum, 0, 0);
                    return;
                }
                if (r == SlotMergeResult.SlotChanged) return;
            }
        }
        _unstable.Set(key, here);
    }

    private static PageId PeekOne(Mapping m, long idx)
    {
        Span<uint> one = stackalloc uint[1];
        m.PeekSlots(idx, one);
        return new PageId(one[0]);
    }

    // Pins target (a free page is no target), then lets the mapping swap the slot under its
    // stripe lock after a byte compare. The pin becomes the slot's reference on success.
    private SlotMergeResult TryMergeOnePage(Mapping m, long idx, PageId page, PageId target)
    {
        uint pinned = _store.TryAddRef(target);
        if (pinned == 0) return SlotMergeResult.BytesDiffer;
        _engine.Counters.OnAddRef(pinned);
        SlotMergeResult r;
        try
        {
            r = m.TryMergeSlot(idx, page, target, _a, _b);
        }
        catch
        {
            _engine.ReleasePage(target);
            throw;
        }
        if (r != SlotMergeResult.Merged) _engine.ReleasePage(target);
        return r;
    }
}
