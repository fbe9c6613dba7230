/**
 * Certificates as ECS `x509.*` fields. Parsed by Node's own X.509 parser
 * (`crypto.X509Certificate`, OpenSSL's), and for the two fields it does not expose
 * (version, signature algorithm) by @peculiar/asn1-x509's ASN.1 schema. A certificate
 * either parser rejects gives null: the caller counts it.
 */
import { createHash, X509Certificate } from 'node:crypto';
import type { AsnConvert } from '@peculiar/asn1-schema';
import type { Certificate } from '@peculiar/asn1-x509';

export interface X509Name {
  distinguished_name: string;
  common_name?: string[];
  country?: string[];
  organization?: string[];
  organizational_unit?: string[];
  locality?: string[];
  state_or_province?: string[];
}

export interface X509Fields {
  version_number: string;
  serial_number: string;
  issuer: X509Name;
  subject: X509Name;
  not_before: string;
  not_after: string;
  alternative_names?: string[];
  public_key_algorithm: string;
  public_key_size?: number;
  public_key_exponent?: number;
  public_key_curve?: string;
  signature_algorithm: string;
}

/** signature algorithm OIDs, named as Go's crypto/x509 (packetbeat) names them */
const SIGNATURE_OIDS: ReadonlyMap<string, string> = new Map([
  ['1.2.840.113549.1.1.4', 'MD5-RSA'],
  ['1.2.840.113549.1.1.5', 'SHA1-RSA'],
  ['1.2.840.113549.1.1.11', 'SHA256-RSA'],
  ['1.2.840.113549.1.1.12', 'SHA384-RSA'],
  ['1.2.840.113549.1.1.13', 'SHA512-RSA'],
  ['1.2.840.113549.1.1.10', 'SHA256-RSAPSS'],
  ['1.2.840.10040.4.3', 'DSA-SHA1'],
  ['2.16.840.1.101.3.4.3.2', 'DSA-SHA256'],
  ['1.2.840.10045.4.1', 'ECDSA-SHA1'],
  ['1.2.840.10045.4.3.2', 'ECDSA-SHA256'],
  ['1.2.840.10045.4.3.3', 'ECDSA-SHA384'],
  ['1.2.840.10045.4.3.4', 'ECDSA-SHA512'],
  ['1.3.101.112', 'Ed25519'],
]);

const KEY_ALGORITHMS: Record<string, string> = { rsa: 'RSA', 'rsa-pss': 'RSA', ec: 'ECDSA', dsa: 'DSA', ed25519: 'Ed25519', ed448: 'Ed448' };
const CURVE_BITS: Record<string, number> = { prime256v1: 256, secp256k1: 256, secp384r1: 384, secp521r1: 521, secp224r1: 224, prime192v1: 192 };

const NAME_KEYS: Record<string, keyof Omit<X509Name, 'distinguished_name'>> = {
  CN: 'common_name',
  C: 'country',
  O: 'organization',
  OU: 'organizational_unit',
  L: 'locality',
  ST: 'state_or_province',
};

/** Node's `C=US\nO=x\nCN=y` as ECS's name: its attributes, and the RFC 2253 string (most specific first, as Go's) */
function name(text: string): X509Name {
  const lines = text === '' ? [] : text.split('\n');
  const out: X509Name = { distinguished_name: lines.slice().reverse().join(',') };
  for (const line of lines) {
    const eq = line.indexOf('=');
    const key = NAME_KEYS[line.slice(0, eq)];
    if (key !== undefined) (out[key] ??= []).push(line.slice(eq + 1));
  }
  return out;
}

/** `DNS:a, IP Address:127.0.0.1` as `['a', '127.0.0.1']` */
function altNames(text: string | undefined): string[] | undefined {
  if (text === undefined || text === '') return undefined;
  return text.split(', ').map((n) => {
    const colon = n.indexOf(':');
    return colon < 0 ? n : n.slice(colon + 1);
  });
}

const iso = (s: string) => {
  const t = Date.parse(s);
  return Number.isNaN(t) ? s : new Date(t).toISOString();
};

export interface ParsedCertificate {
  fields: X509Fields;
  der: Buffer;
}

/* eslint-disable @typescript-eslint/no-require-imports */
let asn1: { AsnConvert: typeof AsnConvert; Certificate: typeof Certificate } | null = null;
/** the ASN.1 schema library, loaded at the first certificate (its load was a tenth of a short run's start-up) */
const asn1Lib = () => (asn1 ??= { AsnConvert: (require('@peculiar/asn1-schema') as typeof import('@peculiar/asn1-schema')).AsnConvert, Certificate: (require('@peculiar/asn1-x509') as typeof import('@peculiar/asn1-x509')).Certificate });
/* eslint-enable @typescript-eslint/no-require-imports */

export function parseCertificate(der: Buffer): ParsedCertificate | null {
  let c: X509Certificate;
  let asn: Certificate;
  try {
    c = new X509Certificate(der);
    const lib = asn1Lib();
    asn = lib.AsnConvert.parse(der, lib.Certificate);
  } catch {
    return null;
  }
  // Node's getters parse lazily (the public key, the names): a damaged part throws on access
  let f: X509Fields;
  let type = '';
  let details: { modulusLength?: number; publicExponent?: bigint; namedCurve?: string } = {};
  try {
    f = {
      version_number: String(asn.tbsCertificate.version + 1),
      serial_number: c.serialNumber.toUpperCase(),
      issuer: name(c.issuer),
      subject: name(c.subject),
      not_before: iso(c.validFrom),
      not_after: iso(c.validTo),
      public_key_algorithm: '',
      signature_algorithm: SIGNATURE_OIDS.get(asn.signatureAlgorithm.algorithm) ?? asn.signatureAlgorithm.algorithm,
    };
    const alt = altNames(c.subjectAltName);
    if (alt !== undefined) f.alternative_names = alt;
  } catch {
    return null;
  }
  try {
    const key = c.publicKey;
    type = key.asymmetricKeyType ?? '';
    details = key.asymmetricKeyDetails ?? {};
  } catch {
    // a key OpenSSL cannot decode: the certificate's other fields stand
    type = 'unknown';
  }
  f.public_key_algorithm = KEY_ALGORITHMS[type] ?? type;
  if (details.modulusLength !== undefined) f.public_key_size = details.modulusLength;
  else if (details.namedCurve !== undefined && CURVE_BITS[details.namedCurve] !== undefined) f.public_key_size = CURVE_BITS[details.namedCurve];
  else if (type === 'ed25519') f.public_key_size = 256;
  if (details.publicExponent !== undefined) f.public_key_exponent = Number(details.publicExponent);
  if (details.namedCurve !== undefined) f.public_key_curve = details.namedCurve;
  return { fields: f, der };
}

/** the certificate's hash as packetbeat writes it: upper-case hex of the DER */
export function certificateHash(der: Buffer, algorithm: string): string {
  return createHash(algorithm).update(der).digest('hex').toUpperCase();
}

export function pem(der: Buffer): string {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE-----\n`;
}
