// The engine's merge scanner [ksmd], created on first use so an engine that never merges in
// the background pays nothing for it.
namespace DedupFs.Pages;

public sealed partial class PageEngine
{
    private MergeScanner? _scanner;

    /// <summary>The merge scanner (run = 0 until started: <c>Scanner.Run = 1</c> or <c>Scanner.Set("run", "1")</c>).</summary>
    public MergeScanner Scanner
    {
        get
        {
            if (_scanner != null) return _scanner;
            var fresh = new MergeScanner(this);
            return Interlocked.CompareExchange(ref _scanner, fresh, null) ?? fresh;
        }
    }

    private Mapping CreateMapping(ulong inode)
    {
        var m = new Mapping(this, _store.OpenSlotTable(inode));
        Options.ConfigureMapping?.Invoke(m);
        return m;
    }

    // The loaded mapping of inode, or the one the scanner opens (it walks stored mappings too).
    internal Mapping MappingForScan(ulong inode) =>
        _mappings.TryGetValue(inode, out Mapping? m) ? m : OpenMapping(inode);

    // The mapping of inode if it is loaded (the scanner's unstable index must not revive a deleted one).
    internal Mapping? LoadedMapping(ulong inode) => _mappings.TryGetValue(inode, out Mapping? m) ? m : null;

    private void StopScanner() => _scanner?.Dispose();
}
