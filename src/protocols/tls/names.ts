/** IANA names of the TLS registries pktflow reports (RFC 8446 §4.2, RFC 8422, RFC 7919, RFC 8447). */

export const EXTENSIONS: ReadonlyMap<number, string> = new Map([
  [0, 'server_name_indication'],
  [1, 'max_fragment_length'],
  [5, 'status_request'],
  [10, 'supported_groups'],
  [11, 'ec_points_formats'],
  [13, 'signature_algorithms'],
  [14, 'use_srtp'],
  [15, 'heartbeat'],
  [16, 'application_layer_protocol_negotiation'],
  [18, 'signed_certificate_timestamp'],
  [21, 'padding'],
  [22, 'encrypt_then_mac'],
  [23, 'extended_master_secret'],
  [27, 'compress_certificate'],
  [28, 'record_size_limit'],
  [35, 'session_ticket'],
  [41, 'pre_shared_key'],
  [42, 'early_data'],
  [43, 'supported_versions'],
  [44, 'cookie'],
  [45, 'psk_key_exchange_modes'],
  [47, 'certificate_authorities'],
  [49, 'post_handshake_auth'],
  [50, 'signature_algorithms_cert'],
  [51, 'key_share'],
  [0xff01, 'renegotiation_info'],
]);

export const GROUPS: ReadonlyMap<number, string> = new Map([
  [1, 'sect163k1'], [2, 'sect163r1'], [3, 'sect163r2'], [4, 'sect193r1'], [5, 'sect193r2'], [6, 'sect233k1'], [7, 'sect233r1'],
  [8, 'sect239k1'], [9, 'sect283k1'], [10, 'sect283r1'], [11, 'sect409k1'], [12, 'sect409r1'], [13, 'sect571k1'], [14, 'sect571r1'],
  [15, 'secp160k1'], [16, 'secp160r1'], [17, 'secp160r2'], [18, 'secp192k1'], [19, 'secp192r1'], [20, 'secp224k1'], [21, 'secp224r1'],
  [22, 'secp256k1'], [23, 'secp256r1'], [24, 'secp384r1'], [25, 'secp521r1'], [26, 'brainpoolP256r1'], [27, 'brainpoolP384r1'],
  [28, 'brainpoolP512r1'], [29, 'x25519'], [30, 'x448'], [256, 'ffdhe2048'], [257, 'ffdhe3072'], [258, 'ffdhe4096'], [259, 'ffdhe6144'],
  [260, 'ffdhe8192'], [0x6399, 'X25519Kyber768Draft00'], [0x11ec, 'X25519MLKEM768'],
]);

export const SIGNATURE_SCHEMES: ReadonlyMap<number, string> = new Map([
  [0x0201, 'rsa_pkcs1_sha1'], [0x0203, 'ecdsa_sha1'], [0x0401, 'rsa_pkcs1_sha256'], [0x0403, 'ecdsa_secp256r1_sha256'],
  [0x0501, 'rsa_pkcs1_sha384'], [0x0503, 'ecdsa_secp384r1_sha384'], [0x0601, 'rsa_pkcs1_sha512'], [0x0603, 'ecdsa_secp521r1_sha512'],
  [0x0804, 'rsa_pss_rsae_sha256'], [0x0805, 'rsa_pss_rsae_sha384'], [0x0806, 'rsa_pss_rsae_sha512'], [0x0807, 'ed25519'], [0x0808, 'ed448'],
  [0x0809, 'rsa_pss_pss_sha256'], [0x080a, 'rsa_pss_pss_sha384'], [0x080b, 'rsa_pss_pss_sha512'],
  [0x0301, 'rsa_sha224'], [0x0303, 'ecdsa_sha224'], [0x0402, 'dsa_sha256'], [0x0502, 'dsa_sha384'], [0x0602, 'dsa_sha512'], [0x0202, 'dsa_sha1'], [0x0302, 'dsa_sha224'],
  [0x081a, 'ecdsa_brainpoolP256r1tls13_sha256'], [0x081b, 'ecdsa_brainpoolP384r1tls13_sha384'], [0x081c, 'ecdsa_brainpoolP512r1tls13_sha512'],
]);

export const ALERTS: ReadonlyMap<number, string> = new Map([
  [0, 'close_notify'], [10, 'unexpected_message'], [20, 'bad_record_mac'], [21, 'decryption_failed'], [22, 'record_overflow'],
  [30, 'decompression_failure'], [40, 'handshake_failure'], [41, 'no_certificate'], [42, 'bad_certificate'], [43, 'unsupported_certificate'],
  [44, 'certificate_revoked'], [45, 'certificate_expired'], [46, 'certificate_unknown'], [47, 'illegal_parameter'], [48, 'unknown_ca'],
  [49, 'access_denied'], [50, 'decode_error'], [51, 'decrypt_error'], [60, 'export_restriction'], [70, 'protocol_version'],
  [71, 'insufficient_security'], [80, 'internal_error'], [86, 'inappropriate_fallback'], [90, 'user_canceled'], [100, 'no_renegotiation'],
  [109, 'missing_extension'], [110, 'unsupported_extension'], [111, 'certificate_unobtainable'], [112, 'unrecognized_name'],
  [113, 'bad_certificate_status_response'], [114, 'bad_certificate_hash_value'], [115, 'unknown_psk_identity'], [116, 'certificate_required'],
  [120, 'no_application_protocol'],
]);

/** GREASE values (RFC 8701): 0x?a?a with both bytes equal; left out of JA3 and JA4 */
export function isGrease(v: number): boolean {
  return (v & 0x0f0f) === 0x0a0a && v >> 8 === (v & 0xff);
}

const hex4 = (v: number) => v.toString(16).padStart(4, '0');

export function nameOf(table: ReadonlyMap<number, string>, v: number): string {
  return table.get(v) ?? (isGrease(v) ? `GREASE (0x${hex4(v)})` : `unknown (0x${hex4(v)})`);
}

/** `1.2`, and `tls`/`ssl`, as ECS's tls.version and tls.version_protocol */
export function versionParts(v: number): { protocol: string; version: string } | null {
  if (v === 0x0300) return { protocol: 'ssl', version: '3.0' };
  if (v >= 0x0301 && v <= 0x0304) return { protocol: 'tls', version: `1.${v - 0x0301}` };
  return null;
}

/** packetbeat's detailed version names: `TLS 1.2`, `SSL 3.0`, else the two bytes */
export function versionName(v: number): string {
  const p = versionParts(v);
  if (p !== null) return `${p.protocol.toUpperCase()} ${p.version}`;
  return isGrease(v) ? `GREASE (0x${hex4(v)})` : `unknown (0x${hex4(v)})`;
}
