// The commit hook: lets a layer above keep records in memory (the filesystem's inode
// attributes, changed by every write) and hand them over once per commit instead of once per
// change.
//
// Committing is raised by Commit() on the committing thread after the metadata gate's write
// lock is taken and before the snapshot and the metadata transaction: no metadata mutation is
// in progress (file-data writers, which only take the page gate, may be), and whatever it Puts
// into the blob tables goes into this same transaction. The gate is recursive (SupportsRecursion), so BlobTable.Put's shared
// EnterMutation under the commit's exclusive hold does not deadlock. The handler must not
// wait for anything a mutating thread may hold while it waits for the gate (a mutating thread
// blocks on the gate while the commit runs): take only short leaf locks that are never held
// across EnterMutation, and never call Commit from it.
namespace DedupFs.Store;

public sealed partial class Store
{
    /// <summary>Raised inside every commit, under the gate, before the metadata transaction:
    /// Put the records that belong to this commit (see the top of Store.Committing.cs for the rules).</summary>
    public event Action? Committing;

    /// <summary>Tells the background committer there is metadata to commit that is not in the
    /// blob tables yet (it will reach them through <see cref="Committing"/>).</summary>
    public void NoteExternalChange() => NoteMetadataChange();
}
