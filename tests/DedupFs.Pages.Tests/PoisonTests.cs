// An operation that fails half-way for a reason it cannot undo (here: an observer that throws
// after a slot changed) must never have its half-done state committed: the store stops
// committing (EROFS), and reopening finds the last commit intact and fsck-clean.
using DedupFs.Store;

namespace DedupFs.Pages.Tests;

public class PoisonTests
{
    [Fact]
    public void Unexpected_failure_stops_commits_and_the_last_commit_survives()
    {
        using var t = new TestEngine();
        Mapping a = t.Engine.OpenMapping(1), b = t.Engine.OpenMapping(2);
        byte[] data = TestEngine.Bytes(4 * PageContent.Size, 31);
        a.Write(0, data);
        t.Engine.CloneMapping(a, b);
        t.Engine.Sync();
        b.SharedPageBroken += (in BreakShareEvent e) => throw new InvalidOperationException("observer bug");
        Assert.Throws<InvalidOperationException>(() => b.Write(0, TestEngine.Bytes(2 * PageContent.Size, 32)));
        Assert.True(t.Engine.Store.IsPoisoned);
        var e = Assert.Throws<StoreException>(() => t.Engine.Sync());
        Assert.Equal(30, e.Errno);
        Assert.Throws<StoreException>(() => a.Write(0, [1]));
        Assert.Contains(t.Log, l => l.Contains("observer bug"));
        t.Reopen();   // Dispose does not commit a poisoned store
        Assert.Equal(data, TestEngine.ReadAll(t.Engine.OpenMapping(2)));
        Assert.Empty(t.Engine.Verify());
        t.Engine.Dispose();
        Assert.True(Fsck.Run(t.Dir).Clean);
        t.Reopen();
    }
}
