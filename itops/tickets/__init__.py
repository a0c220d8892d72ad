"""Tickets: The helpdesk: requests from employees, the IT staff queue and SLAs."""
