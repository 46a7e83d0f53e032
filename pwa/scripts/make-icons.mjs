// Generates the PWA's PNG icons (static/icons/*.png) without any image library:
// the shapes are rasterised with 4x4 supersampling and written as RGBA PNGs
// using node's zlib. The same design lives in static/icons/icon.svg.
// Run with `npm run icons`; the outputs are committed.
import { deflateSync } from 'node:zlib';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const outDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'static', 'icons');

const BG = [0x16, 0x18, 0x1d];
const ACCENT_A = [0x8b, 0x9c, 0xff];
const ACCENT_B = [0xc0, 0x8b, 0xff];

// CRC-32 (PNG polynomial), table-driven.
const CRC_TABLE = new Uint32Array(256);
for (let n = 0; n < 256; n++) {
	let c = n;
	for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
	CRC_TABLE[n] = c >>> 0;
}
function crc32(buf) {
	let c = 0xffffffff;
	for (const byte of buf) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
	return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
	const len = Buffer.alloc(4);
	len.writeUInt32BE(data.length);
	const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
	const crc = Buffer.alloc(4);
	crc.writeUInt32BE(crc32(body));
	return Buffer.concat([len, body, crc]);
}

function encodePng(size, rgba) {
	const ihdr = Buffer.alloc(13);
	ihdr.writeUInt32BE(size, 0);
	ihdr.writeUInt32BE(size, 4);
	ihdr[8] = 8; // bit depth
	ihdr[9] = 6; // colour type: RGBA
	ihdr[10] = 0; // compression
	ihdr[11] = 0; // filter
	ihdr[12] = 0; // interlace
	const stride = size * 4;
	const raw = Buffer.alloc((stride + 1) * size);
	for (let y = 0; y < size; y++) {
		raw[y * (stride + 1)] = 0; // filter: none
		rgba.copy(raw, y * (stride + 1) + 1, y * stride, (y + 1) * stride);
	}
	return Buffer.concat([
		Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
		chunk('IHDR', ihdr),
		chunk('IDAT', deflateSync(raw, { level: 9 })),
		chunk('IEND', Buffer.alloc(0))
	]);
}

// Shapes in unit coordinates (0..1 across the icon).
function inRoundedSquare(x, y, inset, radius) {
	const half = 0.5 - inset;
	const dx = Math.max(Math.abs(x - 0.5) - (half - radius), 0);
	const dy = Math.max(Math.abs(y - 0.5) - (half - radius), 0);
	return Math.abs(x - 0.5) <= half && Math.abs(y - 0.5) <= half && dx * dx + dy * dy <= radius * radius;
}

function inTriangle(x, y, [a, b, c]) {
	const s = (p, q) => (x - q[0]) * (p[1] - q[1]) - (p[0] - q[0]) * (y - q[1]);
	const d1 = s(a, b);
	const d2 = s(b, c);
	const d3 = s(c, a);
	const neg = d1 < 0 || d2 < 0 || d3 < 0;
	const pos = d1 > 0 || d2 > 0 || d3 > 0;
	return !(neg && pos);
}

/** Colour of one sample point, or null when transparent. */
function sample(x, y, maskable) {
	// "any" icons: a rounded tile; maskable icons: full bleed, artwork in the safe zone.
	const scale = maskable ? 0.62 : 0.8;
	if (!maskable && !inRoundedSquare(x, y, 0.02, 0.2)) return null;
	const u = (x - 0.5) / scale + 0.5;
	const v = (y - 0.5) / scale + 0.5;
	const dx = u - 0.5;
	const dy = v - 0.5;
	const r = Math.sqrt(dx * dx + dy * dy);
	const play = [
		[0.42, 0.33],
		[0.42, 0.67],
		[0.69, 0.5]
	];
	if (r <= 0.36 && !inTriangle(u, v, play)) {
		const t = Math.min(Math.max((u + v) / 2, 0), 1);
		return ACCENT_A.map((a, i) => a + (ACCENT_B[i] - a) * t);
	}
	return BG;
}

function render(size, maskable) {
	const ss = 4;
	const rgba = Buffer.alloc(size * size * 4);
	for (let py = 0; py < size; py++) {
		for (let px = 0; px < size; px++) {
			let r = 0;
			let g = 0;
			let b = 0;
			let a = 0;
			for (let sy = 0; sy < ss; sy++) {
				for (let sx = 0; sx < ss; sx++) {
					const c = sample((px + (sx + 0.5) / ss) / size, (py + (sy + 0.5) / ss) / size, maskable);
					if (!c) continue;
					r += c[0];
					g += c[1];
					b += c[2];
					a += 1;
				}
			}
			const o = (py * size + px) * 4;
			if (a > 0) {
				rgba[o] = Math.round(r / a);
				rgba[o + 1] = Math.round(g / a);
				rgba[o + 2] = Math.round(b / a);
				rgba[o + 3] = Math.round((a / (ss * ss)) * 255);
			}
		}
	}
	return encodePng(size, rgba);
}

mkdirSync(outDir, { recursive: true });
const outputs = [
	['icon-192.png', 192, false],
	['icon-512.png', 512, false],
	['maskable-512.png', 512, true],
	['apple-touch-icon.png', 180, true]
];
for (const [name, size, maskable] of outputs) {
	const png = render(size, maskable);
	writeFileSync(join(outDir, name), png);
	console.log(`wrote static/icons/${name} (${size}x${size}, ${png.length} bytes)`);
}
