package issuance

import (
	"bytes"
	"fmt"
	"strings"
	"time"
)

// Document returns the reference service's issued document: a one-page PDF
// 1.4 (Helvetica, A4) stating what it is. It holds no personal data: the
// reference service has no resident register, and the auth certificate it
// validated carries none (docs/jpki.md §7.2). A real municipal service
// returns its own PDF; the terminal treats the bytes as opaque.
func Document(title, ticket, terminalID string, copies int, issued time.Time) []byte {
	lines := []string{
		"kazasu reference issuance service - TEST DOCUMENT, NOT VALID",
		title,
		"Ticket: " + ticket,
		"Terminal: " + terminalID,
		fmt.Sprintf("Copies: %d", copies),
		"Issued: " + issued.UTC().Format(time.RFC3339),
	}
	var content bytes.Buffer
	content.WriteString("BT /F1 12 Tf 56 780 Td 16 TL\n")
	for _, l := range lines {
		fmt.Fprintf(&content, "(%s) Tj T*\n", pdfEscape(l))
	}
	content.WriteString("ET\n")

	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%sendstream", content.Len(), content.String()),
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return b.Bytes()
}

// pdfEscape escapes a PDF literal string and drops non-ASCII runes (the
// document is ASCII by construction; this keeps it valid if not).
func pdfEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '(' || r == ')' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		default:
			b.WriteByte('?')
		}
	}
	return b.String()
}
