import type { TransactionEvent } from '../../events/types';

/**
 * A DHCPv4 exchange: a client's message and the server's reply paired by transaction
 * id and client MAC, or one message alone (docs/events.md, DHCPv4).
 */
export interface Dhcpv4Event extends TransactionEvent<'dhcpv4'> {
  /** the client's message type in capitals (DISCOVER, REQUEST, ...; BOOTREQUEST without option 53); absent for a reply alone */
  method?: string;
  dhcpv4: {
    /** "0x" and eight hex digits */
    transaction_id: string;
    /** `bootrequest` or `bootreply`: the first message's */
    op_code: string;
    hardware_type: string;
    hops: number;
    seconds: number;
    /** `unicast` or `broadcast` */
    flags: string;
    client_mac: string;
    client_ip?: string;
    assigned_ip?: string;
    server_ip?: string;
    relay_ip?: string;
    server_name?: string;
    boot_file_name?: string;
    option?: Dhcpv4OptionFields;
  };
}

/** packetbeat's `dhcpv4.option.*`, then pktflow's `client_identifier` and `relay_agent_information` */
export interface Dhcpv4OptionFields {
  message_type?: string;
  parameter_request_list?: string[];
  requested_ip_address?: string;
  server_identifier?: string;
  broadcast_address?: string;
  max_dhcp_message_size?: number;
  class_identifier?: string;
  domain_name?: string;
  dns_servers?: string[];
  vendor_identifying_options?: { id: number; data: string }[];
  subnet_mask?: string;
  utc_time_offset_sec?: number;
  router?: string[];
  time_servers?: string[];
  ntp_servers?: string[];
  hostname?: string;
  ip_address_lease_time_sec?: number;
  message?: string;
  renewal_time_sec?: number;
  rebinding_time_sec?: number;
  boot_file_name?: string;
  client_identifier?: string;
  relay_agent_information?: { circuit_id?: string; remote_id?: string };
}
