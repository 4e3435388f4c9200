"""A case-insensitive, case-preserving passthrough file system (FUSE).

    /usr/bin/python3 casefold_fs.py BACKING MOUNTPOINT

mounts BACKING at MOUNTPOINT the way macOS's APFS and HFS+ (by default) and
Windows' NTFS behave: a name is looked up ignoring ASCII case ("MOD.PY"
finds "Mod.py"), a directory lists the names as they were created. This
kernel mounts neither ext4 casefold nor vfat, so the tests of
case-insensitive file systems (test_casefold.py) run on this. It needs
Debian's python3-pyfuse3 and fuse3 (scripts/install-deps) and /dev/fuse.

Enough of a file system for the tests: lookups, attributes, listings and
reads; unlink and rmdir (so clean and prune can run on it). Everything else
is refused with EROFS: the trees are made in BACKING. The kernel is told to
cache nothing (timeouts 0), so every lookup comes here.
"""

import errno
import os
import stat
import sys

import pyfuse3
import trio


class CaseFold(pyfuse3.Operations):
    def __init__(self, backing):
        super().__init__()
        self.paths = {pyfuse3.ROOT_INODE: backing}
        self.inodes = {backing: pyfuse3.ROOT_INODE}
        self.next_inode = pyfuse3.ROOT_INODE + 1
        self.fds = {}

    def _inode(self, path):
        ino = self.inodes.get(path)
        if ino is None:
            ino = self.next_inode
            self.next_inode += 1
            self.inodes[path] = ino
            self.paths[ino] = path
        return ino

    def _path(self, inode):
        try:
            return self.paths[inode]
        except KeyError:
            raise pyfuse3.FUSEError(errno.ENOENT)

    def _find(self, parent, name):
        """The entry of directory PARENT whose name equals NAME ignoring
        ASCII case (the exact name first)."""
        d = self._path(parent)
        exact = os.path.join(d, os.fsdecode(name))
        if os.path.lexists(exact):
            return exact
        want = name.lower()
        try:
            names = os.listdir(os.fsencode(d))
        except OSError as e:
            raise pyfuse3.FUSEError(e.errno)
        for n in names:
            if n.lower() == want:
                return os.path.join(d, os.fsdecode(n))
        raise pyfuse3.FUSEError(errno.ENOENT)

    def _attr(self, path):
        try:
            st = os.lstat(path)
        except OSError as e:
            raise pyfuse3.FUSEError(e.errno)
        a = pyfuse3.EntryAttributes()
        a.st_ino = self._inode(path)
        a.generation = 0
        a.entry_timeout = 0
        a.attr_timeout = 0
        a.st_mode = st.st_mode
        a.st_nlink = st.st_nlink
        a.st_uid = st.st_uid
        a.st_gid = st.st_gid
        a.st_rdev = st.st_rdev
        a.st_size = st.st_size
        a.st_blksize = 4096
        a.st_blocks = (st.st_size + 511) // 512
        a.st_atime_ns = st.st_atime_ns
        a.st_mtime_ns = st.st_mtime_ns
        a.st_ctime_ns = st.st_ctime_ns
        return a

    async def lookup(self, parent_inode, name, ctx=None):
        if name == b".":
            return self._attr(self._path(parent_inode))
        if name == b"..":
            return self._attr(os.path.dirname(self._path(parent_inode)))
        return self._attr(self._find(parent_inode, name))

    async def getattr(self, inode, ctx=None):
        return self._attr(self._path(inode))

    async def readlink(self, inode, ctx):
        return os.fsencode(os.readlink(self._path(inode)))

    async def opendir(self, inode, ctx):
        return inode

    async def readdir(self, inode, start_id, token):
        d = self._path(inode)
        try:
            names = sorted(os.listdir(os.fsencode(d)))
        except OSError as e:
            raise pyfuse3.FUSEError(e.errno)
        for i, n in enumerate(names[start_id:], start_id):
            try:
                attr = self._attr(os.path.join(d, os.fsdecode(n)))
            except pyfuse3.FUSEError:
                continue
            if not pyfuse3.readdir_reply(token, n, attr, i + 1):
                break

    async def releasedir(self, fh):
        pass

    async def open(self, inode, flags, ctx):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_APPEND):
            raise pyfuse3.FUSEError(errno.EROFS)
        try:
            fd = os.open(self._path(inode), os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as e:
            raise pyfuse3.FUSEError(e.errno)
        self.fds[fd] = inode
        return pyfuse3.FileInfo(fh=fd)

    async def read(self, fh, off, size):
        return os.pread(fh, size, off)

    async def release(self, fh):
        os.close(fh)
        self.fds.pop(fh, None)

    async def unlink(self, parent_inode, name, ctx):
        path = self._find(parent_inode, name)
        try:
            os.unlink(path)
        except OSError as e:
            raise pyfuse3.FUSEError(e.errno)
        self._forget_path(path)

    async def rmdir(self, parent_inode, name, ctx):
        path = self._find(parent_inode, name)
        try:
            os.rmdir(path)
        except OSError as e:
            raise pyfuse3.FUSEError(e.errno)
        self._forget_path(path)

    def _forget_path(self, path):
        ino = self.inodes.pop(path, None)
        if ino is not None:
            self.paths.pop(ino, None)

    async def statfs(self, ctx):
        s = pyfuse3.StatvfsData()
        st = os.statvfs(self.paths[pyfuse3.ROOT_INODE])
        for attr in ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files",
                     "f_ffree", "f_favail", "f_namemax"):
            setattr(s, attr, getattr(st, attr))
        return s

    # Everything that would make or change an entry: the trees are made in
    # the backing directory.
    async def _refuse(self, *args, **kw):
        raise pyfuse3.FUSEError(errno.EROFS)

    create = mkdir = mknod = symlink = link = rename = setattr = setxattr = _refuse


def main():
    backing, mountpoint = os.path.abspath(sys.argv[1]), sys.argv[2]
    options = set(pyfuse3.default_options)
    options.add("fsname=casefold")
    options.discard("default_permissions")
    pyfuse3.init(CaseFold(backing), mountpoint, options)
    try:
        trio.run(pyfuse3.main)
    finally:
        pyfuse3.close(unmount=True)


if __name__ == "__main__":
    main()
