// The commit's double buffering (Store.Commit.cs): page writers run while a commit flushes and
// writes its snapshot; what they do belongs to the next commit; a slot freed meanwhile is not
// recycled by the commit in flight; a failed commit loses nothing it had taken.
namespace DedupFs.Pages.Tests;

public class CommitDoubleBufferTests
{
    private const int P = PageContent.Size;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    [Fact]
    public void Writers_run_during_the_transaction_and_their_work_waits_for_the_next_commit()
    {
        using var t = new TestEngine();
        Mapping m = t.Engine.OpenMapping(1);
        byte[] first = TestEngine.Bytes(8 * P, 40), second = TestEngine.Bytes(8 * P, 41);
        m.Write(0, first);
        bool wroteDuringCommit = false;
        t.Engine.Store.AfterSnapshotForTests = () =>
            wroteDuringCommit = Task.Run(() => m.Write(8 * P, second)).Wait(Patience);   // would deadlock under the old gate
        t.Engine.Sync();
        t.Engine.Store.AfterSnapshotForTests = null;
        Assert.True(wroteDuringCommit);
        Assert.True(t.Engine.Store.MaxCommitWriterPause > TimeSpan.Zero);
        Assert.Equal([.. first, .. second], TestEngine.ReadAll(m));
        Assert.Empty(t.Engine.Verify());

        t.CrashAndReopen();                                  // only the snapshot is durable
        Assert.Equal(first, TestEngine.ReadAll(t.Engine.OpenMapping(1)));
        Assert.Empty(t.Engine.Verify());
        t.Engine.OpenMapping(1).Write(8 * P, second);
        t.Engine.Sync();
        t.CrashAndReopen();
        Assert.Equal([.. first, .. second], TestEngine.ReadAll(t.Engine.OpenMapping(1)));
        Assert.Empty(t.Engine.Verify());
    }

    [Fact]
    public void A_slot_freed_during_a_commit_is_not_recycled_by_it()
    {
        using var t = new TestEngine();
        Mapping m = t.Engine.OpenMapping(1);
        byte[] data = TestEngine.Bytes(8 * P, 42);
        m.Write(0, data);
        t.Engine.Sync();
        t.Engine.OpenMapping(3).Write(0, TestEngine.Bytes(P, 46));   // something to commit, so the hook runs
        bool truncated = false;
        t.Engine.Store.AfterSnapshotForTests = () => truncated = Task.Run(() => m.Truncate(0)).Wait(Patience);
        t.Engine.Sync();
        t.Engine.Store.AfterSnapshotForTests = null;
        Assert.True(truncated);
        Assert.Equal((0, 8), t.Engine.Store.SlotCounts);    // freed after the snapshot: still pending
        t.Engine.OpenMapping(2).Write(0, TestEngine.Bytes(8 * P, 43));   // must not land in those slots

        t.CrashAndReopen();                                  // the durable metadata still reaches them
        Assert.Equal(data, TestEngine.ReadAll(t.Engine.OpenMapping(1)));
        Assert.Empty(t.Engine.Verify());
    }

    [Fact]
    public void A_failed_commit_gives_back_everything_it_took()
    {
        using var t = new TestEngine();
        Mapping a = t.Engine.OpenMapping(1), b = t.Engine.OpenMapping(2);
        byte[] old = TestEngine.Bytes(4 * P, 44), data = TestEngine.Bytes(8 * P, 45);
        b.Write(0, old);
        t.Engine.Sync();
        a.Write(0, data);
        b.Truncate(0);                                       // 4 slots pending
        t.Engine.Store.Inodes.Put(DedupFs.Store.StoreKeys.Inode(1), "attrs"u8);
        t.Engine.Store.AfterSnapshotForTests = () => throw new IOException("injected commit failure");
        Assert.Throws<IOException>(() => t.Engine.Sync());
        t.Engine.Store.AfterSnapshotForTests = null;
        Assert.False(t.Engine.Store.IsPoisoned);
        Assert.Equal(4, t.Engine.Store.SlotCounts.Pending);  // not recycled by the failed commit

        t.Engine.Sync();
        Assert.Equal(4, t.Engine.Store.SlotCounts.Free);
        t.CrashAndReopen();
        Assert.Equal(data, TestEngine.ReadAll(t.Engine.OpenMapping(1)));
        Assert.Equal(0, t.Engine.OpenMapping(2).Length);
        Assert.True(t.Engine.Store.Inodes.TryGet(DedupFs.Store.StoreKeys.Inode(1), out byte[] attrs));
        Assert.Equal("attrs"u8.ToArray(), attrs);
        Assert.Empty(t.Engine.Verify());
    }
}
