// gen_room_vectors.mjs writes room_vectors.json: room-token test vectors
// made by an implementation of the SPEC section 3 signing rule that shares
// no code with the Go package (Node.js crypto's Ed25519, hand-built
// message). Deterministic: every key comes from a fixed seed, and Ed25519
// signatures are deterministic, so the output is byte-identical on every run.
//
// Regenerate (Node.js >= 18) from the repository root:
//
//   node token/testdata/gen_room_vectors.mjs > token/testdata/room_vectors.json
//
// CI does not run node; token/room_vectors_test.go reads the JSON.

import { createHash, createPrivateKey, createPublicKey, sign } from "node:crypto";

const DOMAIN = Buffer.from("nodalmerge-room-token-v1", "utf8");
// PKCS#8 DER header of an Ed25519 private key; the 32-byte seed follows.
const PKCS8_ED25519 = Buffer.from("302e020100300506032b657004220420", "hex");

// seed derives a 32-byte seed from a label, so vectors are reproducible.
function seed(label) {
  return createHash("sha256").update("nodalmerge room vector seed: " + label).digest();
}

function keyPair(seedBytes) {
  const priv = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seedBytes]), format: "der", type: "pkcs8" });
  const pub = Buffer.from(createPublicKey(priv).export({ format: "jwk" }).x, "base64url");
  return { priv, pub };
}

// Byte-wise order of the UTF-8 encodings. JavaScript's default sort
// compares UTF-16 code units, which differs for characters above U+FFFF.
function byteSort(caps) {
  return [...caps].sort((a, b) => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8")));
}

function message(room, peer, expiry, caps) {
  const exp = Buffer.alloc(8);
  exp.writeBigUInt64LE(BigInt(expiry));
  return Buffer.concat([
    DOMAIN, Buffer.from([0]),
    Buffer.from(room, "utf8"), Buffer.from([0]),
    peer, exp, Buffer.from([0]),
    Buffer.from(byteSort(caps).join("\n"), "utf8"),
  ]);
}

const cases = [
  { name: "no caps", room: "lobby", expiry: "1700003600", caps: [] },
  { name: "classes and path grants, unsorted", room: "team:alpha", expiry: "1700003600",
    caps: ["write:intent/**", "room.admin", "read:world/**"] },
  { name: "byte-wise sort, not UTF-16 order", room: "lobby", expiry: "1700003600",
    caps: ["\u{1F600}-emoji", "\uFF21-fullwidth", "Z-upper", "a-lower", "\u00e9-accent"] },
  { name: "duplicate caps", room: "lobby", expiry: "1700003600", caps: ["room.admin", "room.admin"] },
  { name: "kid", room: "lobby", expiry: "1700003600", caps: ["room.admin"], kid: "rk-0123456789ab" },
  { name: "expiry zero", room: "lobby", expiry: "0", caps: [] },
  { name: "expiry above 2^53", room: "lobby", expiry: "9007199254740993", caps: ["policy.admin"] },
  { name: "expiry 2^64-1", room: "lobby", expiry: "18446744073709551615", caps: ["room.admin"] },
  { name: "every room-name punctuation", room: "a.b_c~d:e@f!g$h&i'j(k)l*m+n,o;p=q-r", expiry: "1893456000",
    caps: ["read:**", "write:chat/*"] },
  { name: "longest room name", room: "r".repeat(128), expiry: "1700003600", caps: ["tick.admin"] },
  { name: "non-ASCII room (signed as UTF-8)", room: "salle-\u00e9t\u00e9", expiry: "1700003600", caps: [] },
  { name: "many caps", room: "big", expiry: "1700003600",
    caps: Array.from({ length: 20 }, (_, i) => `write:zone/${19 - i}/**`) },
];

const vectors = cases.map((c, i) => {
  const roomSeed = seed("room key " + i);
  const peerSeed = seed("peer " + i);
  const roomKey = keyPair(roomSeed);
  const peer = keyPair(peerSeed).pub;
  const msg = message(c.room, peer, c.expiry, c.caps);
  const sig = sign(null, msg, roomKey.priv);
  const tokenId = createHash("sha256").update(sig).digest().subarray(0, 16).toString("hex");
  // The wire form as a client would send it. Caps keep the minter's order
  // (verifiers sort), and expiry is written as a bare integer even above
  // 2^53, where a JavaScript number would lose precision.
  const fields = [
    `"peer_pubkey":${JSON.stringify(peer.toString("hex"))}`,
    `"expiry":${c.expiry}`,
    `"caps":${JSON.stringify(c.caps)}`,
    `"sig":${JSON.stringify(sig.toString("hex"))}`,
  ];
  if (c.kid) fields.push(`"kid":${JSON.stringify(c.kid)}`);
  return {
    name: c.name,
    room: c.room,
    room_seed: roomSeed.toString("hex"),
    room_pubkey: roomKey.pub.toString("hex"),
    peer_pubkey: peer.toString("hex"),
    expiry: c.expiry,
    caps: c.caps,
    kid: c.kid ?? "",
    message: msg.toString("hex"),
    sig: sig.toString("hex"),
    token_id: tokenId,
    token_json: "{" + fields.join(",") + "}",
  };
});

process.stdout.write(JSON.stringify({
  generator: "token/testdata/gen_room_vectors.mjs",
  rule: "\"nodalmerge-room-token-v1\" 0x00 room 0x00 peer(32) expiry(u64 LE) 0x00 sorted(caps).join(\"\\n\")",
  vectors,
}, null, 2) + "\n");
