package image

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"kazasu/firmware/bundle"
	"kazasu/firmware/layout"
)

// assemble writes the sparse disk image: partition table, provisioning
// record, boot FAT, root A, /perm. Root B stays empty (zero).
func assemble(path string, d *layout.Disk, boot, root, perm string, prov *layout.Provision) error {
	os.Remove(path)
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(d.Size); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := d.WriteTable(f); err != nil {
		return err
	}
	if prov != nil {
		b, err := layout.EncodeProvision(prov)
		if err != nil {
			return err
		}
		if _, err := f.WriteAt(b, layout.ProvisionOffset); err != nil {
			return fmt.Errorf("image: %w", err)
		}
	}
	for _, p := range []struct {
		src  string
		part int
	}{{boot, layout.PartBoot}, {root, layout.PartRootA}, {perm, layout.PartPerm}} {
		if err := copySparse(f, p.src, d.Partition(p.part)); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	return f.Close()
}

const scanBlock = 64 << 10

// copySparse copies src into the partition, skipping all-zero blocks so
// the image stays sparse.
func copySparse(dst *os.File, src string, p layout.Partition) error {
	s, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	defer s.Close()
	st, err := s.Stat()
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if st.Size() > p.Size() {
		return fmt.Errorf("image: %s (%d bytes) does not fit partition %d (%d bytes)", src, st.Size(), p.Number, p.Size())
	}
	buf := make([]byte, scanBlock)
	zero := make([]byte, scanBlock)
	for off := int64(0); off < st.Size(); off += scanBlock {
		n, err := s.ReadAt(buf, off)
		if err != nil && err != io.EOF {
			return fmt.Errorf("image: reading %s: %w", src, err)
		}
		if bytes.Equal(buf[:n], zero[:n]) {
			continue
		}
		if _, err := dst.WriteAt(buf[:n], p.Offset()+off); err != nil {
			return fmt.Errorf("image: %w", err)
		}
	}
	return nil
}

// usedExtents lists the image's non-zero 64 KiB blocks, merged: the ranges
// a flasher must write. Everything else on the target is zero in the image.
func usedExtents(path string) ([]bundle.Extent, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("image: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("image: %w", err)
	}
	var ext []bundle.Extent
	var used int64
	buf := make([]byte, scanBlock)
	zero := make([]byte, scanBlock)
	for off := int64(0); off < st.Size(); {
		n, err := f.ReadAt(buf, off)
		if err != nil && err != io.EOF {
			return nil, 0, fmt.Errorf("image: %w", err)
		}
		if n == 0 {
			break
		}
		if !bytes.Equal(buf[:n], zero[:n]) {
			if k := len(ext); k > 0 && ext[k-1].Target+ext[k-1].Length == off {
				ext[k-1].Length += int64(n)
			} else {
				ext = append(ext, bundle.Extent{Target: off, Length: int64(n)})
			}
			used += int64(n)
		}
		off += int64(n)
	}
	return ext, used, nil
}

// payloadFile is a bundle payload stored in a file (disk payloads: the
// extents of the file).
type payloadFile struct {
	role     bundle.Role
	path     string
	extents  []bundle.Extent
	diskSize int64
}

func writeBundle(out string, m bundle.Manifest, ps []payloadFile) error {
	var srcs []bundle.Source
	for _, p := range ps {
		f, err := os.Open(p.path)
		if err != nil {
			return fmt.Errorf("image: %w", err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return fmt.Errorf("image: %w", err)
		}
		s := bundle.Source{Role: p.role, R: f, Size: st.Size()}
		if p.role == bundle.RoleDisk {
			var size int64
			for _, e := range p.extents {
				size += e.Length
			}
			s = bundle.Source{Role: p.role, R: bundle.ExtentReader(f, p.extents), Size: size, Extents: p.extents, DiskSize: p.diskSize}
		}
		srcs = append(srcs, s)
	}
	w, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	defer w.Close()
	if _, err := bundle.Write(w, m, srcs); err != nil {
		return err
	}
	if err := w.Sync(); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	return w.Close()
}
