// Space accounting for statfs(2) and `dedupfs stats`: how many page slots exist, how many are
// free now, how many wait for a durable commit, and what the files occupy.
namespace DedupFs.Store;

/// <summary>A snapshot of the store's space use.</summary>
/// <param name="Slots">slots ever allocated in pages.dat (the high-water mark)</param>
/// <param name="FreeSlots">slots reusable now</param>
/// <param name="PendingSlots">slots freed since the last commit (reusable after it)</param>
/// <param name="PageFileBytes">size of pages.dat</param>
/// <param name="MetadataBytes">size of the LMDB data file</param>
public readonly record struct StoreSpace(long Slots, long FreeSlots, long PendingSlots, long PageFileBytes, long MetadataBytes)
{
    /// <summary>Slots holding live pages.</summary>
    public long LiveSlots => Slots - FreeSlots - PendingSlots;
}

public sealed partial class Store
{
    /// <summary>The store's space use now.</summary>
    public StoreSpace Space
    {
        get
        {
            var (free, pending) = SlotCounts;
            long meta = new FileInfo(Path.Combine(Directory, StoreFormat.MetaDirName, "data.mdb")).Length;
            return new StoreSpace(_pages.HighWater, free, pending, RandomAccess.GetLength(_pageFile), meta);
        }
    }
}
