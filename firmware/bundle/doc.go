// Package bundle is kazasu's signed update and flash bundle: one file holding
// a JSON manifest, an ed25519 signature over it, and payloads (root file
// system, boot partition, or a whole disk image as used ranges) whose every
// 1 MiB chunk is hashed in the manifest.
//
// # File layout (format 1)
//
// All integers are big-endian. Every byte of the file is either signed,
// covered by a signed hash, or required to be zero:
//
//	offset  size  field
//	0       8     magic "KZBUNDL1"
//	8       4     manifest length M, 1..MaxManifest
//	12      4     reserved, zero
//	16      8     key id: the first 8 bytes of SHA-256(ed25519 public key)
//	24      64    ed25519 signature over SignedMessage(bytes 0..16, manifest)
//	88      M     manifest, JSON (Manifest)
//	88+M    ...   zero padding up to the first payload (4096-aligned)
//	...           payloads at their manifest offsets, ascending, 4096-aligned,
//	              zero padding between; the file ends at the last payload's end
//
// The signature covers the domain string "kazasu bundle v1\n", the first 16
// header bytes and the exact manifest bytes. An unsigned bundle (as fwbuild
// writes it, before fwsign) has an all-zero key id and signature.
//
// # Manifest
//
//	{
//	  "format": 1,
//	  "product": "kazasu",
//	  "kind": "update" | "flash",
//	  "boards": ["pi4"],
//	  "version": "1.4.0",
//	  "build": 42,                  // monotonic; devices refuse build <= installed
//	  "created": "2026-01-01T00:00:00Z",
//	  "expires": "2026-07-01T00:00:00Z",
//	  "kernel": "kernel.rpi@v0.0.0-…", // the boot partition the root needs
//	  "git_commit": "…",
//	  "chunk_size": 1048576,
//	  "payloads": [{
//	    "role": "root",             // root | boot | disk
//	    "offset": 4096, "size": 15728640,
//	    "sha256": "…", "chunks": ["…", …],
//	    "extents": [{"target": 0, "length": 1048576}, …], // disk only
//	    "disk_size": 2147483648                           // disk only
//	  }]
//	}
//
// Unknown fields are refused: a device never acts on a signed field it does
// not understand.
//
// # Use
//
// A device verifies with Read (a stream, e.g. an HTTP upload: header and
// signature are checked before any payload byte is returned, and every chunk
// is checked before it is returned) and then Manifest.Admit (board, expiry,
// build). A flasher opens a file with Open and writes Bundle.Ranges. Write
// builds an unsigned bundle; Sign signs one in place where the key lives.
package bundle
