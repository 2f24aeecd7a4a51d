using DedupFs.Store;

namespace DedupFs.Pages.Tests;

public class MappingTests
{
    private const int P = PageContent.Size;

    [Fact]
    public void Write_read_round_trip_with_partial_pages_and_holes()
    {
        using var t = new TestEngine();
        Mapping m = t.Engine.OpenMapping(1);
        byte[] a = TestEngine.Bytes(10000, 1);
        m.Write(5000, a);
        Assert.Equal(15000, m.Length);
        byte[] all = TestEngine.ReadAll(m);
        Assert.True(all.AsSpan(0, 4096).IndexOfAnyExcept((byte)0) < 0);
        Assert.Equal(PageId.None, m.PageAt(0)); // nothing written there: a hole
        Assert.Equal(a, all[5000..]);
        Assert.Empty(t.Engine.Verify());
        t.Reopen();
        Assert.Equal(all, TestEngine.ReadAll(t.Engine.OpenMapping(1)));
    }

    [Fact]
    public void Zero_pages_are_holes()
    {
        using var t = new TestEngine();
        Mapping m = t.Engine.OpenMapping(1);
        m.Write(0, TestEngine.Bytes(3 * P, 2));
        m.Write(P, new byte[P]);
        Assert.Equal(PageId.None, m.PageAt(1));
        Assert.Equal(2, t.Engine.Statistics.UniquePages);
        Assert.Empty(t.Engine.Verify());
    }

    [Fact]
    public void Inline_dedup_shares_identical_pages_across_files()
    {
        using var t = new TestEngine();
        byte[] data = TestEngine.Bytes(4 * P, 3);
        t.Engine.OpenMapping(1).Write(0, data);
        t.Engine.OpenMapping(2).Write(0, data);
        KsmStatistics st = t.Engine.Statistics;
        Assert.Equal(4, st.UniquePages);
        Assert.Equal(4, st.PagesShared);
        Assert.Equal(4, st.PagesSharing);
        Assert.Equal(4, st.InlineDedupHits);
        Assert.Equal(t.Engine.OpenMapping(1).PageAt(2), t.Engine.OpenMapping(2).PageAt(2));
        Assert.Equal([(1ul, 2L), (2ul, 2L)], t.Engine.Rmap(t.Engine.OpenMapping(1).PageAt(2)));
        Assert.Empty(t.Engine.Verify());
    }

    [Fact]
    public void Inline_dedup_off_stores_copies()
    {
        using var t = new TestEngine(new PageEngineOptions { InlineDedup = false, CacheBytes = 1 << 20 });
        byte[] data = TestEngine.Bytes(2 * P, 3);
        t.Engine.OpenMapping(1).Write(0, data);
        t.Engine.OpenMapping(2).Write(0, data);
        Assert.Equal(4, t.Engine.Statistics.UniquePages);
        Assert.Equal(2, t.Engine.MergeAll());
        Assert.Equal(2, t.Engine.Statistics.UniquePages);
        Assert.Equal(2, t.Engine.Statistics.PagesShared);
        Assert.Empty(t.Engine.Verify());
    }

    [Fact]
    public void Hash_match_is_only_a_candidate_bytes_decide()
    {
        using var t = new TestEngine();
        byte[] a = TestEngine.Bytes(P, 4), b = TestEngine.Bytes(P, 5);
        Span<byte> scratch = new byte[P];
        PageId pa, pb;
        using (t.Engine.Store.EnterMutation())
        {
            pa = t.Engine.InstallPage(a, 12345, dedup: true, scratch);  // forced collision:
            pb = t.Engine.InstallPage(b, 12345, dedup: true, scratch);  // same hash, other bytes
        }
        Assert.NotEqual(pa, pb);
        byte[] read = new byte[P];
        t.Engine.ReadPage(pb, read);
        Assert.Equal(b, read);
        using (t.Engine.Store.EnterMutation())
        {
            Assert.Equal(pa, t.Engine.InstallPage(a, 12345, dedup: true, scratch)); // identical: shared
            t.Engine.ReleasePage(pa); t.Engine.ReleasePage(pa); t.Engine.ReleasePage(pb);
        }
    }

    [Fact]
    public void Clone_shares_pages_and_write_breaks_the_share_for_one_file_only()
    {
        using var t = new TestEngine();
        Mapping a = t.Engine.OpenMapping(1), b = t.Engine.OpenMapping(2);
        byte[] data = TestEngine.Bytes(8 * P + 100, 6);
        a.Write(0, data);
        var events = new List<BreakShareEvent>();
        b.SharedPageBroken += (in BreakShareEvent e) => events.Add(e);
        t.Engine.CloneMapping(a, b);
        Assert.Equal(data, TestEngine.ReadAll(b));
        Assert.Equal(9, t.Engine.Statistics.PagesShared);
        b.Write(3 * P + 10, [1, 2, 3]);
        Assert.Equal(data, TestEngine.ReadAll(a));                 // invariant 2
        byte[] expect = (byte[])data.Clone();
        expect[3 * P + 10] = 1; expect[3 * P + 11] = 2; expect[3 * P + 12] = 3;
        Assert.Equal(expect, TestEngine.ReadAll(b));
        Assert.Equal(1, t.Engine.Statistics.CowKsm);
        BreakShareEvent ev = Assert.Single(events);
        Assert.Equal(3, ev.Index);
        Assert.Equal(BreakShareReason.Write, ev.Reason);
        Assert.Equal(a.PageAt(3), ev.SharedPage);
        Assert.Equal(b.PageAt(3), ev.NewPage);
        Assert.Equal([(1ul, 3L)], t.Engine.Rmap(a.PageAt(3)));
        Assert.Empty(t.Engine.Verify());
    }

    [Fact]
    public void Policy_can_refuse_and_nothing_changes()
    {
        using var t = new TestEngine();
        Mapping a = t.Engine.OpenMapping(1), b = t.Engine.OpenMapping(2);
        a.Write(0, TestEngine.Bytes(4 * P, 7));
        t.Engine.CloneMapping(a, b);
        b.Write(0, TestEngine.Bytes(P, 8)); // private now
        byte[] before = TestEngine.ReadAll(b);
        b.Policy = (in BreakShareEvent e) => BreakShareDecision.Refuse;
        b.RefusedErrno = 26; // ETXTBSY
        var ex = Assert.Throws<BreakShareRefusedException>(() => b.Write(0, TestEngine.Bytes(2 * P, 9)));
        Assert.Equal(26, ex.Errno);
        Assert.Equal(1, ex.Event.Index);  // page 0 is private, page 1 is the first shared one
        Assert.Equal(before, TestEngine.ReadAll(b));        // page 0 untouched too: refused up front
        Assert.Throws<BreakShareRefusedException>(() => b.Truncate(P + 5));
        Assert.Throws<BreakShareRefusedException>(() => b.PunchHole(P, P));
        Assert.Throws<BreakShareRefusedException>(() => t.Engine.Clone(a, 0, b, 0, 4 * P));
        Assert.Equal(before, TestEngine.ReadAll(b));
        b.Write(0, TestEngine.Bytes(P, 10)); // private page: no policy involved
        Assert.Empty(t.Engine.Verify());
    }

    [Fact]
    public void Truncate_inside_a_shared_page_goes_through_the_callback()
    {
        using var t = new TestEngine();
        Mapping a = t.Engine.OpenMapping(1), b = t.Engine.OpenMapping(2);
        byte[] data = TestEngine.Bytes(3 * P, 11);
        a.Write(0, data);
        t.Engine.CloneMapping(a, b);
        var reasons = new List<BreakShareReason>();
        t.Engine.SharedPageBroken += (in BreakShareEvent e) => reasons.Add(e.Reason);
        b.Truncate(P + 100);
        Assert.Equal([BreakShareReason.Truncate], reasons);
        b.Truncate(3 * P);
        byte[] expect = new byte[3 * P];
        data.AsSpan(0, P + 100).CopyTo(expect);
        Assert.Equal(expect, TestEngine.ReadAll(b));
        Assert.Equal(data, TestEngine.ReadAll(a));
        b.PunchHole(0, P);
        Assert.Equal([BreakShareReason.Truncate, BreakShareReason.Punch], reasons);
        Assert.Empty(t.Engine.Verify());
    }

    [Fact]
    public void Unmerge_makes_everything_private_and_keeps_bytes()
    {
        using var t = new TestEngine();
        Mapping a = t.Engine.OpenMapping(1), b = t.Engine.OpenMapping(2);
        byte[] data = TestEngine.Bytes(5 * P, 12);
        a.Write(0, data);
        t.Engine.CloneMapping(a, b);
        Assert.Equal(5, t.Engine.UnmergeAll());
        Assert.Equal(0, t.Engine.Statistics.PagesShared);
        Assert.Equal(0, t.Engine.Statistics.PagesSharing);
        Assert.Equal(data, TestEngine.ReadAll(a));
        Assert.Equal(data, TestEngine.ReadAll(b));
        Assert.Empty(t.Engine.Verify());
    }

    [Fact]
    public void Clone_range_onto_itself_and_partial_tail()
    {
        using var t = new TestEngine();
        Mapping a = t.Engine.OpenMapping(1);
        byte[] data = TestEngine.Bytes(4 * P + 7, 13);
        a.Write(0, data);
        t.Engine.Clone(a, 0, a, 2 * P, 2 * P);       // overlapping self-clone
        byte[] expect = (byte[])data.Clone();
        data.AsSpan(0, 2 * P).CopyTo(expect.AsSpan(2 * P));
        Assert.Equal(expect, TestEngine.ReadAll(a));
        Mapping b = t.Engine.OpenMapping(2);
        Assert.Equal(4 * P + 7, t.Engine.Clone(a, 0, b, 0, long.MaxValue));
        Assert.Equal(expect, TestEngine.ReadAll(b));
        Assert.Throws<ArgumentException>(() => t.Engine.Clone(a, 1, b, 0, P));
        Assert.Empty(t.Engine.Verify());
    }

    [Fact]
    public void Delete_releases_pages_and_slots_come_back_after_sync()
    {
        using var t = new TestEngine();
        Mapping a = t.Engine.OpenMapping(1);
        a.Write(0, TestEngine.Bytes(4 * P, 14));
        t.Engine.Sync();
        t.Engine.DeleteMapping(1);
        Assert.Equal(0, t.Engine.Statistics.UniquePages);
        Assert.Equal((0, 4), t.Engine.Store.SlotCounts);
        t.Engine.Sync();
        Assert.Equal((4, 0), t.Engine.Store.SlotCounts);
        t.Reopen();
        Assert.Equal(0, t.Engine.OpenMapping(1).Length);
        Assert.Equal(0, t.Engine.OpenMapping(1).PageCount);
        Assert.Empty(t.Engine.Verify());
    }

    [Fact]
    public void Corrupt_page_on_disk_reads_as_EIO_with_a_log_line()
    {
        using var t = new TestEngine(new PageEngineOptions { CacheBytes = 0 });
        Mapping a = t.Engine.OpenMapping(1);
        a.Write(0, TestEngine.Bytes(2 * P, 15));
        PageId victim = a.PageAt(1);
        t.Reopen();
        using (var f = new FileStream(Path.Combine(t.Dir, "pages.dat"), FileMode.Open, FileAccess.ReadWrite))
        {
            f.Position = victim.Slot * P + 100;
            int b = f.ReadByte();
            f.Position--;
            f.WriteByte((byte)(b ^ 0x40));
        }
        a = t.Engine.OpenMapping(1);
        var buf = new byte[P];
        Assert.Equal(P, a.Read(0, buf));                        // the other page is fine
        var e = Assert.Throws<PageChecksumException>(() => a.Read(P, buf));
        Assert.Equal(5, e.Errno);
        Assert.Equal(victim, e.Page);
        Assert.Contains(t.Log, l => l.Contains(victim.ToString()) && l.Contains("checksum"));
    }
}

public class MappingLifetimeTests
{
    [Fact]
    public void Zero_range_extends_unless_keep_size()
    {
        using var t = new TestEngine();
        Mapping m = t.Engine.OpenMapping(9);
        m.Write(0, TestEngine.Bytes(2 * PageContent.Size, 22));
        m.ZeroRange(100, 3 * PageContent.Size, keepSize: true);
        Assert.Equal(2 * PageContent.Size, m.Length);
        Assert.Equal(PageId.None, m.PageAt(1));
        m.ZeroRange(2 * PageContent.Size, 10, keepSize: false);
        Assert.Equal(2 * PageContent.Size + 10, m.Length);
        byte[] all = TestEngine.ReadAll(m);
        Assert.True(all.AsSpan(100).IndexOfAnyExcept((byte)0) < 0);
        Assert.Empty(t.Engine.Verify());
    }

    [Fact]
    public void Close_unloads_only_committed_mappings_and_reload_reads_the_same()
    {
        using var t = new TestEngine();
        byte[] data = TestEngine.Bytes(3 * PageContent.Size + 5, 21);
        t.Engine.OpenMapping(5).Write(0, data);
        Assert.False(t.Engine.CloseMapping(5));     // dirty: stays
        t.Engine.Sync();
        Assert.True(t.Engine.CloseMapping(5));
        Assert.False(t.Engine.Store.IsSlotTableLoaded(5));
        Assert.Equal(data, TestEngine.ReadAll(t.Engine.OpenMapping(5)));
        Assert.Empty(t.Engine.Verify());
    }
}
