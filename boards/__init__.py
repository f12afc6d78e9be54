from .spec import BOARDS, Board, get_board

__all__ = ["BOARDS", "Board", "get_board"]
