// Several processes' worth of work at once through the mount, while commits (fsync and the
// 2-second background committer) and kernel FORGETs (drop_caches) interleave: the test fails
// if any operation errs or if the whole does not finish in time (a deadlock between the
// namespace lock, the store gate and the commit hook would show here as a timeout).
using DedupFs.FileSystem.Tests.Support;
using static DedupFs.Tests.Support.Posix;

namespace DedupFs.FileSystem.Tests;

public sealed class ConcurrencyTests : IDisposable
{
    private readonly DedupMount _m = new(CacheMode.Shared);

    public void Dispose() => _m.Dispose();

    [Fact]
    public void Namespace_and_data_work_in_parallel_with_commits_and_forgets()
    {
        var errors = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var workers = new List<Thread>();
        for (int w = 0; w < 4; w++)
        {
            int worker = w;
            workers.Add(new Thread(() =>
            {
                try
                {
                    var data = new byte[64 << 10];
                    new Random(worker).NextBytes(data);
                    string dir = _m[$"w{worker}"];
                    Directory.CreateDirectory(dir);
                    for (int i = 0; i < 150; i++)
                    {
                        string a = Path.Combine(dir, $"a{i}"), b = Path.Combine(dir, $"b{i}");
                        File.WriteAllBytes(a, data);
                        File.Move(a, b);
                        if (!File.ReadAllBytes(b).AsSpan().SequenceEqual(data)) errors.Enqueue($"{b}: wrong bytes");
                        Directory.CreateDirectory(Path.Combine(dir, $"d{i}"));
                        File.Copy(b, Path.Combine(dir, $"d{i}", "c"));
                        if (i % 3 == 0)
                        {
                            File.Delete(Path.Combine(dir, $"d{i}", "c"));
                            Directory.Delete(Path.Combine(dir, $"d{i}"));
                            File.Delete(b);
                        }
                    }
                }
                catch (Exception e)
                {
                    errors.Enqueue($"worker {worker}: {e}");
                }
            }));
        }
        bool done = false;
        var syncer = new Thread(() =>
        {
            try
            {
                int fd = OpenOrThrow(_m["sync"], OCreat | OWronly);
                try
                {
                    while (!Volatile.Read(ref done))
                    {
                        int rc = Fsync(fd);
                        if (rc != 0) errors.Enqueue($"fsync: errno {rc}");
                        File.WriteAllText("/proc/sys/vm/drop_caches", "2");
                        Thread.Sleep(20);
                    }
                }
                finally
                {
                    Close(fd);
                }
            }
            catch (Exception e)
            {
                errors.Enqueue($"syncer: {e}");
            }
        });
        foreach (var t in workers) t.Start();
        syncer.Start();
        bool finished = workers.All(t => t.Join(TimeSpan.FromSeconds(120)));
        Volatile.Write(ref done, true);
        finished &= syncer.Join(TimeSpan.FromSeconds(30));
        Assert.True(finished, "workers did not finish: deadlock?");
        Assert.Empty(errors);

        for (int w = 0; w < 4; w++)
            Assert.Equal(100, Directory.GetFiles(_m[$"w{w}"]).Length);
        _m.Remount();
        for (int w = 0; w < 4; w++)
        {
            Assert.Equal(100, Directory.GetFiles(_m[$"w{w}"]).Length);
            Assert.Equal(100, Directory.GetDirectories(_m[$"w{w}"]).Length);
        }
    }
}
