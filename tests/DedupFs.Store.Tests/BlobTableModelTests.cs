// BlobTable against a model: a SortedDictionary of what the table should hold. Random puts,
// deletes and commits over a few prefixes; after every step, full and paged listings and
// point reads must equal the model. Exercises the two-way merge of committed LMDB entries and
// the ordered pending overlay (replacements, deletions of committed and of pending keys).
using System.Text;

namespace DedupFs.Store.Tests;

public class BlobTableModelTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Listings_match_a_model_through_puts_deletes_and_commits(int seed)
    {
        using var dir = new TempDir();
        using Store store = Store.Open(dir.Path, TestOptions.Manual());
        var rng = new Random(seed);
        var model = new SortedDictionary<byte[], byte[]>(Comparer<byte[]>.Create((a, b) => a.AsSpan().SequenceCompareTo(b)));
        for (int step = 0; step < 1500; step++)
        {
            ulong parent = (ulong)rng.Next(1, 4);
            byte[] key = StoreKeys.Dirent(parent, Encoding.ASCII.GetBytes($"n{rng.Next(0, 60)}"));
            int op = rng.Next(10);
            if (op < 6)
            {
                byte[] value = [(byte)rng.Next(256), (byte)step];
                store.Dirents.Put(key, value);
                model[key] = value;
            }
            else if (op < 9)
            {
                Assert.Equal(model.Remove(key), store.Dirents.Delete(key));
            }
            else
            {
                store.Commit();
            }

            if (step % 25 != 0) continue;
            for (ulong p = 0; p <= 4; p++)
            {
                byte[] prefix = StoreKeys.DirentPrefix(p);
                var want = model.Where(kv => kv.Key.AsSpan().StartsWith(prefix)).ToList();
                var got = store.Dirents.List(prefix);
                Assert.Equal(want.Select(kv => Convert.ToHexString(kv.Key) + ":" + Convert.ToHexString(kv.Value)),
                             got.Select(kv => Convert.ToHexString(kv.Key) + ":" + Convert.ToHexString(kv.Value)));
                var paged = new List<byte[]>();
                byte[] after = [];
                int max = rng.Next(1, 9);
                while (true)
                {
                    var page = store.Dirents.List(prefix, after, max);
                    paged.AddRange(page.Select(kv => kv.Key));
                    if (page.Count < max) break;
                    after = StoreKeys.NameOf(page[^1].Key).ToArray();
                }
                Assert.Equal(want.Select(kv => Convert.ToHexString(kv.Key)), paged.Select(Convert.ToHexString));
            }
            foreach (var (k, v) in model) Assert.True(store.Dirents.TryGet(k, out byte[] got) && got.AsSpan().SequenceEqual(v));
        }
    }

    [Fact]
    public void A_large_pending_directory_lists_in_pages_without_rescanning_the_overlay()
    {
        using var dir = new TempDir();
        using Store store = Store.Open(dir.Path, TestOptions.Manual());
        for (int i = 0; i < 100_000; i++) store.Dirents.Put(StoreKeys.Dirent(7, Encoding.ASCII.GetBytes($"f{i:D6}")), [1]);
        int seen = 0;
        byte[] after = [];
        while (true)
        {
            var page = store.Dirents.List(StoreKeys.DirentPrefix(7), after, 100);
            seen += page.Count;
            if (page.Count < 100) break;
            after = StoreKeys.NameOf(page[^1].Key).ToArray();
        }
        Assert.Equal(100_000, seen);
    }

    [Fact]
    public void Committing_handler_puts_into_the_same_commit()
    {
        using var dir = new TempDir();
        using (Store store = Store.Open(dir.Path, TestOptions.Manual()))
        {
            int calls = 0;
            store.Committing += () =>
            {
                calls++;
                store.Inodes.Put(StoreKeys.Inode(5), [9, 9]); // takes the gate shared under the commit's exclusive hold
            };
            store.Dirents.Put(StoreKeys.Dirent(1, "x"u8), [1]);
            store.Commit();
            Assert.Equal(1, calls);
        }
        using (Store store = Store.Open(dir.Path, TestOptions.Manual()))
        {
            Assert.True(store.Inodes.TryGet(StoreKeys.Inode(5), out byte[] v));
            Assert.Equal(new byte[] { 9, 9 }, v);
        }
    }
}
