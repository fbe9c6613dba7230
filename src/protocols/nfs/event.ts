import type { ClientEndpoint, TransactionEvent } from '../../events/types';

/** the client's end, with the machine name its AUTH_SYS credentials give */
export interface NfsClientEndpoint extends ClientEndpoint {
  /** `rpc.cred.machinename`, when the credentials carry one (packetbeat's source.domain) */
  domain?: string;
}

/** An NFS transaction: an ONC RPC call to the NFS program with its reply (docs/events.md, NFS). */
export interface NfsEvent extends TransactionEvent<'nfs', NfsClientEndpoint> {
  event: TransactionEvent<'nfs'>['event'] & {
    /** `nfs.` and `nfs.opcode` (packetbeat) */
    action?: string;
    /** `failure` when the RPC was not accepted, or accepted with another status than success (packetbeat) */
    outcome?: string;
  };
  /** AUTH_SYS: the uid, as text (ECS keyword) */
  user?: { id: string };
  /** AUTH_SYS: the gid, as text */
  group?: { id: string };
  rpc: {
    /** the call's transaction id, 8 hex digits */
    xid: string;
    /** `none`, `unix`, `rpcsec_gss`, `unknown (N)`; absent for a reply without its call */
    auth_flavor?: string;
    cred?: {
      stamp: number;
      machinename: string;
      uid: number;
      gid: number;
      gids: number[];
    };
    /** absent for a call without its reply */
    status?: string;
  };
  /** absent for a reply without its call */
  nfs?: {
    version: number;
    minor_version?: number;
    tag?: string;
    opcode: string;
    status?: string;
    /** COMPOUND: each operation, with its status once the reply says it */
    operations?: { opcode: string; status?: string }[];
  };
}
